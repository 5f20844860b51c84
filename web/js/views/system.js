// System: status and a backup download.

import { h, button, toast, errorText, saveBlob, busy } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { formatBytes, formatDuration } from '../state.js';

export async function mount(root) {
  const status = await api.get('/api/v1/system/status');
  const row = (label, value, testid) => [h('dt', {}, label), h('dd', { testid }, value)];
  const backup = button(t('system.backup'), {
    class: 'primary', testid: 'system-backup',
    onclick: async () => {
      try {
        const file = await busy(backup, () => api.download('POST', '/api/v1/system/backup'));
        saveBlob(file.blob, file.name);
        toast(t('system.backup_done', { name: file.name, size: formatBytes(file.blob.size) }));
      } catch (err) {
        toast(errorText(err), 'error');
      }
    },
  });
  root.append(h('section', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', {}, t('nav.system'))),
    h('div', { class: 'card' },
      h('h2', {}, t('system.status')),
      h('dl', { class: 'details', testid: 'system-status' },
        row(t('system.version'), status.version, 'system-version'),
        row(t('system.schema'), String(status.schema_version)),
        row(t('system.uptime'), formatDuration(status.uptime_secs)),
        row(t('system.data_dir'), h('code', {}, status.data_dir)),
        row(t('system.config_file'), status.config_file ? h('code', {}, status.config_file) : t('system.no_config')),
        row(t('system.store_size'), formatBytes(status.store_bytes)))),
    h('div', { class: 'card' },
      h('h2', {}, t('system.backup_title')),
      h('p', { class: 'muted' }, t('system.backup_intro')),
      backup)));
}
