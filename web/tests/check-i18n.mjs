// Developer check (not served): every literal t('key') used by the console exists in both
// languages, and both dictionaries have the same keys. Run: node web/tests/check-i18n.mjs
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', 'js');
const { t, missingKeys } = await import(join(root, 'i18n.js'));
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.js')) files.push(path);
  }
};
walk(root);
// The public help centre's page uses the same dictionaries.
walk(join(root, '..', 'help'));
const problems = [...missingKeys()];
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  for (const match of text.matchAll(/\bt\('([a-z_]+\.[a-z_.]+)'/g)) {
    if (!t.has(match[1])) problems.push(`${file}: unknown key ${match[1]}`);
  }
}
const dynamic = {
  'nav.': ['inbox', 'routing', 'knowledge', 'assist', 'employees', 'departments', 'positions', 'roles', 'tokens', 'channels', 'audit', 'system'],
  'status.': ['open', 'pending', 'snoozed', 'resolved', 'closed'],
  'priority.': ['low', 'normal', 'high', 'urgent'],
  'delivery.': ['queued', 'sent', 'delivered', 'read', 'failed'],
  'channel_kind.': ['web', 'api', 'email', 'sms', 'wechat', 'wecom', 'wechat_kf', 'dingtalk', 'feishu', 'telegram',
    'whatsapp', 'messenger', 'instagram', 'line', 'slack', 'phone'],
  'inbox.view_': ['mine', 'my_team', 'mentions', 'unassigned', 'all'],
  'conversation.action_': ['open', 'reopen', 'pending', 'snooze', 'snooze_short', 'resolve', 'close'],
  'roles.subject_': ['employee', 'department', 'position'],
  'tokens.status_': ['active', 'expired', 'revoked'],
  'audit.actor_': ['employee', 'api_token', 'system', 'anonymous'],
  'email.state_': ['stopped', 'connecting', 'idle', 'polling', 'error'],
  'email.tls_': ['tls', 'starttls', 'plain'],
  'presence.': ['online', 'busy', 'away', 'focus', 'offline'],
  'urgency.': ['low', 'normal', 'high', 'urgent'],
  'routing.tab_': ['live', 'employees', 'lanes', 'calendars', 'policies', 'experiments'],
  'experiment.state_': ['draft', 'running', 'finished'],
  'experiment.arm_': ['control', 'candidate'],
  'experiment.verdict_': ['better', 'worse', 'none', 'unknown'],
  'experiment.metric_': ['service_level', 'average_wait_s', 'resolution_rate', 'average_resolution_s', 'first_contact_resolution', 'csat',
    'abandonment', 'fairness_gini'],
  'experiment.': ['ended_at', 'stopped_at', 'ends', 'ended', 'lower_better', 'higher_better'],
  'replay.run_': ['recorded', 'active', 'candidate'],
  'routing.state_': ['offered', 'none'],
  'routing.outcome_': ['open', 'accepted', 'declined', 'expired', 'withdrawn'],
  'routing.term_': ['skill_fit', 'past_contact', 'language', 'spare_capacity', 'idle_time', 'fairness', 'location', 'part_time',
    'off_hours'],
  'routing.medium_': ['chat', 'email', 'call'],
  'routing.lang_': ['zh', 'en', 'unknown'],
  'routing.level_': ['1', '2', '3', '4', '5'],
  'routing.type_': ['pre_sales', 'after_sales', 'billing', 'technical', 'complaint'],
  'sla.clock_': ['first_response', 'next_response', 'resolution'],
  'sla.level_': ['ok', 'warning', 'breached'],
  'sla.action_': ['raise_priority', 'relax', 'escalate', 'notify_supervisors'],
  'calendar.day_': ['0', '1', '2', '3', '4', '5', '6'],
  'calendar.short_': ['0', '1', '2', '3', '4', '5', '6'],
  'handoff.mode_': ['warm', 'blind'],
  'handoff.kind_': ['escalation', 'transfer', 'return'],
  'handoff.outcome_': ['waiting', 'accepted', 'declined', 'expired', 'cancelled'],
  'offer.title_': ['escalation', 'transfer'],
  'offer.badge_': ['escalation', 'transfer'],
  'assist.emotion_': ['calm', 'anxious', 'angry'],
  'assist.severity_': ['flag', 'warn', 'block'],
  'assist.': ['alert_angry', 'hint_angry', 'alert_rude', 'hint_rude', 'enabled', 'disabled', 'kind_article', 'kind_reply'],
  'knowledge.tab_': ['articles', 'review', 'entities', 'search', 'synonyms', 'transfer'],
  'knowledge.status_': ['draft', 'published', 'archived'],
  'knowledge.draft_': ['editing', 'in_review', 'changes_requested'],
  'knowledge.visibility_': ['internal', 'public', 'departments'],
  'knowledge.lang_': ['zh', 'en'],
  'knowledge.kind_': ['product', 'component', 'feature', 'known_issue', 'fix', 'policy', 'team', 'topic'],
  'knowledge.rel_': ['has_component', 'has_feature', 'has_known_issue', 'fixed_by', 'about', 'owned_by', 'governed_by', 'related_to'],
  'knowledge.export_': ['json', 'markdown'],
  'knowledge.report_': ['articles_created', 'articles_published', 'entities_created', 'entities_updated', 'relations_created',
    'relations_existing', 'synonym_sets'],
};
for (const [prefix, names] of Object.entries(dynamic)) {
  for (const name of names) if (!t.has(prefix + name)) problems.push(`unknown key ${prefix}${name}`);
}
if (problems.length) {
  console.log(problems.join('\n'));
  process.exit(1);
}
console.log(`i18n: ${files.length} files checked, dictionaries match`);
