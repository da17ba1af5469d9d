import { defineConfig } from 'prisma/config';

// Prisma 7 reads the datasource from here (only the CLI uses it; the app builds its own adapter).
export default defineConfig({
  schema: 'schema.prisma',
  migrations: { path: 'migrations' },
  datasource: {
    url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/closeloop',
  },
});
