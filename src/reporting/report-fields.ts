/**
 * A report's copy-ready fields: the form of the report's platform (src/domain/platforms), where the
 * platform rules live. Re-exports the value formatting the admin API and the dashboard use.
 */
import { platformProfile } from '../domain/platforms';
import { ReportData, ReportField } from '../domain/report';

export {
  DEFAULT_REPORT_LABELS as REPORT_KIND_LABELS,
  NOT_SET,
  formatAmount,
  formatDate,
} from '../domain/platforms/form-values';

/**
 * The fields the platform's form asks for, in the form's order, copy-ready. `timeZone` is the
 * deal's zone (dates derived from `occurredAt` are local dates there). An unknown kind has no form.
 */
export function reportFields(data: ReportData, timeZone: string): ReportField[] {
  return platformProfile(data.platform).form(data, timeZone);
}
