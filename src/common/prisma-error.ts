/** Prisma error codes the hub reacts to (https://www.prisma.io/docs/orm/reference/error-reference). */
export enum PrismaErrorCode {
  UniqueConstraint = 'P2002',
  RecordNotFound = 'P2025',
  TransactionConflict = 'P2034',
  TransactionApiError = 'P2028',
  CannotReachDatabase = 'P1001',
  DatabaseTimeout = 'P1008',
  ConnectionClosed = 'P1017',
}

const RETRIABLE = new Set<string>([
  PrismaErrorCode.TransactionConflict,
  PrismaErrorCode.TransactionApiError,
  PrismaErrorCode.CannotReachDatabase,
  PrismaErrorCode.DatabaseTimeout,
  PrismaErrorCode.ConnectionClosed,
]);

export function prismaErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^P\d{4}$/.test(code) ? code : undefined;
}

export function isRetriablePrismaError(err: unknown): boolean {
  const code = prismaErrorCode(err);
  return code !== undefined && RETRIABLE.has(code);
}
