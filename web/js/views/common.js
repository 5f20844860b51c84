// Pieces shared by several views.

import { h } from '../dom.js';
import { t } from '../i18n.js';
import { permissionDescription } from '../state.js';

/**
 * Checkboxes for permissions, grouped by area. `permissions` are {name, description} from the
 * server; `offered` limits which can be ticked (others are shown disabled). Returns
 * { node, values() }.
 */
export function permissionPicker(permissions, { selected = [], disabled = false, offered = null, testid = 'permission-picker' } = {}) {
  const groups = new Map();
  for (const p of permissions) {
    const area = p.name.split('.')[0];
    if (!groups.has(area)) groups.set(area, []);
    groups.get(area).push(p);
  }
  const boxes = [];
  const node = h('div', { class: 'perm-grid', testid },
    [...groups].map(([area, list]) => h('fieldset', { class: 'perm-group' },
      h('legend', {}, t.has(`area.${area}`) ? t(`area.${area}`) : area),
      list.map((p) => {
        const unavailable = offered && !offered.includes(p.name);
        const input = h('input', {
          type: 'checkbox', value: p.name, checked: selected.includes(p.name),
          disabled: disabled || unavailable, dataset: { permission: p.name }, testid: 'permission-checkbox',
        });
        boxes.push(input);
        return h('label', { class: ['check', 'perm', unavailable && 'unavailable'], title: unavailable ? t('roles.not_yours') : undefined },
          input,
          h('span', {}, h('span', { class: 'perm-desc' }, permissionDescription(p.name, p.description)), h('code', { class: 'perm-name' }, p.name)));
      }))));
  return { node, values: () => boxes.filter((b) => b.checked).map((b) => b.value) };
}
