import { opsJa } from './ops.ja';

export type OpsKey = keyof typeof opsJa;

/** English labels of the events, dead letters, replay previews, audit log, queues pages (the keys of ops.ja.ts). */
export const opsEn: Record<OpsKey, string> = {};
