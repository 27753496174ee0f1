// MUST NOT type-check: AuditLogFilter has no `actor`.
import type { AuditLogFilter } from 'kavach-native'

export const filter: AuditLogFilter = { actor: 'u1' }
