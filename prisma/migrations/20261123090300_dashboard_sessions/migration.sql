-- CreateTable
CREATE TABLE "dashboard_session" (
    "id" TEXT NOT NULL,
    "token_id" TEXT,
    "token_hash" TEXT NOT NULL,
    "role" "TokenRole" NOT NULL,
    "actor_name" TEXT NOT NULL,
    "csrf_token" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dashboard_session_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "dashboard_session_token_id_idx" ON "dashboard_session"("token_id");

-- CreateIndex
CREATE INDEX "dashboard_session_expires_at_idx" ON "dashboard_session"("expires_at");

-- AddForeignKey
ALTER TABLE "dashboard_session" ADD CONSTRAINT "dashboard_session_token_id_fkey" FOREIGN KEY ("token_id") REFERENCES "api_token"("id") ON DELETE CASCADE ON UPDATE CASCADE;
