import { HttpStatus, Injectable } from '@nestjs/common';

import { AdminErrorCode } from './admin-error-code';
import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { AppConfig } from '../config/app-config';
import { ProviderKey, providerFor } from '../config/providers';
import { ESignaturePort, EnvelopeDocumentKind } from '../ports/e-signature.port';
import { PrismaService } from '../prisma/prisma.service';

/** The e-signature tool (the provider registry): its name in messages and its configuration. */
const E_SIGNATURE = providerFor('e-signature');

export interface ContractDocument {
  kind: EnvelopeDocumentKind;
  /** For `Content-Disposition`: `contract-<dealId>.pdf` or `certificate-<dealId>.pdf`. */
  filename: string;
  /** The PDF, byte for byte as the e-signature tool served it. */
  bytes: Buffer;
}

/**
 * A deal's signed contract as PDF (CONTRACT §6, issue 13): the combined document with its
 * certificate of completion appended, or the certificate (締結証明書) alone — what PRONI アイミツ
 * accepts as the 確定報告 attachment when there is no invoice, and evidence in a dispute. Served
 * only for a COMPLETED contract: a sent or declined envelope has documents at DocuSign, but no
 * signed contract. Read from the e-signature tool on each request; the hub stores no copy.
 */
@Injectable()
export class ContractDocumentsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly esign: ESignaturePort,
    private readonly config: AppConfig,
  ) {}

  /** Whether the deal's contract documents can be asked for (the dashboard shows links only then). */
  static available(contract: { status: string; envelopeId: string | null } | null): boolean {
    return contract?.status === 'COMPLETED' && contract.envelopeId !== null;
  }

  async document(dealId: string, kind: EnvelopeDocumentKind): Promise<ContractDocument> {
    const deal = await this.prisma.deal.findUnique({
      where: { id: dealId },
      select: { contract: { select: { envelopeId: true, status: true } } },
    });
    if (!deal) throw notFound(`deal ${dealId} not found`);
    const contract = deal.contract;
    if (!contract) throw notFound(`deal ${dealId} has no contract`);
    if (contract.status !== 'COMPLETED') {
      throw new DomainException(
        HttpStatus.CONFLICT,
        AdminErrorCode.ContractNotCompleted,
        `the contract of deal ${dealId} is ${contract.status}: its documents are served once it is COMPLETED`,
      );
    }
    if (!contract.envelopeId) throw notFound(`the contract of deal ${dealId} has no envelope`);
    if (!this.config.providerConfigured(E_SIGNATURE.key as ProviderKey)) {
      throw new DomainException(
        HttpStatus.SERVICE_UNAVAILABLE,
        AdminErrorCode.ESignatureNotConfigured,
        `contract documents are read from ${E_SIGNATURE.label}: it is not configured`,
      );
    }
    let bytes: Buffer;
    try {
      bytes = await this.esign.downloadDocument(contract.envelopeId, kind);
    } catch (err) {
      throw new DomainException(
        HttpStatus.BAD_GATEWAY,
        AdminErrorCode.ESignatureUnavailable,
        `could not read the ${kind} document of envelope ${contract.envelopeId} from ${E_SIGNATURE.label}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const safeId = dealId.replace(/[^\w.-]/g, '_');
    return {
      kind,
      filename: `${kind === 'combined' ? 'contract' : 'certificate'}-${safeId}.pdf`,
      bytes,
    };
  }
}

/** The headers of a contract document answer: a PDF download that no cache keeps. */
export function contractDocumentHeaders(doc: ContractDocument): Record<string, string> {
  return {
    'content-type': 'application/pdf',
    'content-disposition': `attachment; filename="${doc.filename}"`,
    'content-length': String(doc.bytes.length),
    'cache-control': 'no-store',
  };
}

const notFound = (message: string) =>
  new DomainException(HttpStatus.NOT_FOUND, CommonErrorCode.NotFound, message);
