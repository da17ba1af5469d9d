import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';

import { PrismaService } from '../prisma/prisma.service';
import { AuthGuard, AuthedRequest, RequireRole } from './auth.guard';
import { EventsService } from './events.service';
import { pageQuery } from './pagination';
import { parseInput } from './parse-query';
import { ROLES, TokensService } from './tokens.service';
import { DomainException } from '../common/domain.exception';
import { AuditService } from './audit.service';

const eventsQuery = pageQuery.extend({
  provider: z
    .enum(['docusign', 'hubspot', 'stripe', 'milestones', 'partner-center', 'generic'])
    .optional(),
  status: z.enum(['RECEIVED', 'PROCESSED', 'IGNORED', 'FAILED', 'DEAD']).optional(),
  dealId: z.string().min(1).optional(),
});
const deadLettersQuery = pageQuery.extend({
  status: z.enum(['OPEN', 'REPLAYED', 'DISCARDED']).default('OPEN'),
});
const tokenBody = z.object({
  name: z.string().trim().min(1).max(100),
  role: z.enum(ROLES as [string, ...string[]]),
});

/** Admin API: events, dead letters, tokens (CONTRACT §6). */
@ApiTags('admin')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('api')
export class AdminController {
  constructor(
    private readonly events: EventsService,
    private readonly prisma: PrismaService,
    private readonly audit: AuditService,
    private readonly tokens: TokensService,
  ) {}

  @Get('events')
  @RequireRole('viewer')
  listEvents(@Query() query: unknown) {
    return this.events.list(parseInput(eventsQuery, query));
  }

  @Get('events/:id')
  @RequireRole('viewer')
  getEvent(@Param('id') id: string) {
    return this.events.get(id);
  }

  @Post('events/:id/replay')
  @HttpCode(202)
  @RequireRole('admin')
  replayEvent(@Param('id') id: string, @Req() req: AuthedRequest) {
    return this.events.replayEvent(id, req.actor);
  }

  @Get('dead-letters')
  @RequireRole('viewer')
  listDeadLetters(@Query() query: unknown) {
    return this.events.listDeadLetters(parseInput(deadLettersQuery, query));
  }

  @Post('dead-letters/:id/replay')
  @HttpCode(202)
  @RequireRole('admin')
  replayDeadLetter(@Param('id') id: string, @Req() req: AuthedRequest) {
    return this.events.replayDeadLetter(id, req.actor);
  }

  @Delete('dead-letters/:id')
  @HttpCode(204)
  @RequireRole('admin')
  async discardDeadLetter(@Param('id') id: string, @Req() req: AuthedRequest): Promise<void> {
    await this.events.discardDeadLetter(id, req.actor);
  }

  @Post('tokens')
  @HttpCode(201)
  @RequireRole('admin')
  async createToken(@Body() body: unknown, @Req() req: AuthedRequest) {
    const { name, role } = parseInput(tokenBody, body);
    const created = await this.tokens.create(name, role as 'viewer');
    await this.audit.record(this.prisma, req.actor, 'token.create', created.id, { name, role });
    return created;
  }

  @Get('tokens')
  @RequireRole('admin')
  async listTokens() {
    return { items: await this.tokens.list() };
  }

  @Delete('tokens/:id')
  @HttpCode(204)
  @RequireRole('admin')
  async revokeToken(@Param('id') id: string, @Req() req: AuthedRequest): Promise<void> {
    if (!(await this.tokens.revoke(id))) {
      throw new DomainException(404, 'NOT_FOUND', `no active token ${id}`);
    }
    await this.audit.record(this.prisma, req.actor, 'token.revoke', id);
  }
}
