/** Envelope custom fields the hub sets on the envelopes it makes (CONTRACT §3.1). */

/** The deal an envelope is for: how a Connect message finds its deal. */
export const DEAL_ID_FIELD = 'closeloop_deal_id';

/**
 * The contract row the hub made the envelope for (an unguessable id): only an envelope carrying
 * its deal's contract is the hub's own; one that merely names the deal is foreign (issue 12).
 */
export const CONTRACT_ID_FIELD = 'closeloop_contract_id';
