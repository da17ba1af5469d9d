import { v7 as uuidv7 } from 'uuid';

/** Time-ordered ids with a type prefix (evt_, dl_, tok_, cl_deal_, inv_, …). */
export const newId = (prefix: string): string => `${prefix}_${uuidv7()}`;
