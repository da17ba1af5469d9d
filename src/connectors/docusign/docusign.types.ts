export type { CreateEnvelopeInput, EnvelopeView } from '../../ports/e-signature.port';
