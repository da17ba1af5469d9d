import { Controller, UseFilters, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';

import { DashboardExceptionFilter } from './dashboard.filter';
import { DashboardGuard } from './dashboard.guard';

/** Events inbox, dead letters (replay with a dry-run preview, delete, bulk replay), audit log and Bull Board. */
@ApiExcludeController()
@UseGuards(DashboardGuard)
@UseFilters(DashboardExceptionFilter)
@Controller('dashboard')
export class OpsController {}
