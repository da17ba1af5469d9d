import { ReportData, ReportField } from './report.types';

/** The fields the platform's form asks for, copy-ready (skeleton: filled in by the manual-queue work). */
export function reportFields(_data: ReportData, _timeZone: string): ReportField[] {
  return [];
}
