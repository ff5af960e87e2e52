package cohort

import "time"

// Audit actions. They are stable strings: people search logs for them.
const (
	AuditSignIn             = "sign_in"
	AuditSignInFailed       = "sign_in_failed"
	AuditSignOut            = "sign_out"
	AuditRoleChanged        = "role_changed"
	AuditCredentialsRevoked = "credentials_revoked"
	AuditTokenCreated       = "token_created"
	AuditDeviceApproved     = "device_approved"
	AuditTokenRevoked       = "token_revoked"
	AuditMembersAdded       = "members_added"
	AuditMemberRemoved      = "member_removed"
	AuditInviteCreated      = "invite_created"
	AuditInviteRevoked      = "invite_revoked"
	AuditInviteRedeemed     = "invite_redeemed"
	AuditInviteRefused      = "invite_refused"
	AuditSessionOpened      = "session_opened"
	AuditSessionEntered     = "session_entered"
	AuditSessionStopped     = "session_stopped"
	AuditSessionExtended    = "session_extended"
	AuditSessionsStarted    = "sessions_started"
	AuditWarmChanged        = "warm_changed"
	AuditMaterialsChanged   = "materials_changed"
	AuditWorkCollected      = "work_collected"
	AuditSettingsChanged    = "settings_changed"
)

// AuditEvent records who did what, for admins and class instructors.
type AuditEvent struct {
	ID         int64     `json:"id"`
	Time       time.Time `json:"time"`
	ActorID    string    `json:"actor_id,omitempty"`
	ActorEmail string    `json:"actor_email,omitempty"`
	Action     string    `json:"action"`
	ClassID    string    `json:"class_id,omitempty"`
	SessionID  string    `json:"session_id,omitempty"`
	// Subject is whom or what the action was about (an email, a token).
	Subject string `json:"subject,omitempty"`
	Detail  string `json:"detail,omitempty"`
	// ClientAddr is the address the request came from.
	ClientAddr string `json:"client_addr,omitempty"`
}

// AuditFilter selects audit events: a class's, or all (ClassID empty),
// newest first, with ID < Before when Before > 0.
type AuditFilter struct {
	ClassID string
	Before  int64
	Limit   int
}
