/** A route guard: signed in; for 'act' also the admin role and the CSRF or custom header (server.ts builds it). */
import type { FastifyRequest } from 'fastify';

export type Guard = (need: 'read' | 'act') => (req: FastifyRequest) => Promise<void>;
