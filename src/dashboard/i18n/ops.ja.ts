/** Japanese labels of the dashboard's events, dead letters, replay previews, audit log, queues pages. */
export const opsJa = {} as const;
