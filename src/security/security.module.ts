import { Module } from '@nestjs/common';

import { AuthThrottleService } from './auth-throttle.service';

/**
 * The brute-force brake shared by every door that takes a token (admin API, dashboard login,
 * metrics, readiness details): one AuthThrottleService per process, attached to the HTTP server by
 * app.factory.ts. The security headers need no provider (security-headers.ts).
 */
@Module({
  providers: [AuthThrottleService],
  exports: [AuthThrottleService],
})
export class SecurityModule {}
