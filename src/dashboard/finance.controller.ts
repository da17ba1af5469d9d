import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';

import { DashboardExceptionFilter } from './dashboard.filter';
import { DashboardGuard } from './dashboard.guard';

/** Reconciliation (three legs, CSV export) and the reports queue (copy-ready fields, mark reported, postpone). */
@ApiExcludeController()
@UseGuards(DashboardGuard)
@UseFilters(DashboardExceptionFilter)
@Controller('dashboard')
export class FinanceController {}
