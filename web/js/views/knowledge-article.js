// One knowledge article, `/knowledge/articles/{id}` (and `/knowledge/articles/new` for writers):
// - the published content rendered from Markdown (markdown.js: text nodes only, safe links);
// - for knowledge.write, the draft editor: title, Markdown body with a live preview, language,
//   visibility (internal, public, departments with a department picker) and tags. Saving sends
//   the draft's updated_at as base_updated_at, so a draft someone else changed meanwhile is a
//   409 shown in a banner instead of a silent overwrite. Submit for review (saving first when
//   edited) and Discard draft. A reviewer's note is shown while changes are requested;
// - for knowledge.manage: Publish, Request changes (with a note), Archive/Unarchive, the owner
//   and the review date;
// - the published versions with View and "Restore as draft";
// - the article's relations in the graph (add one to an entity picked by name, remove) and the
//   article's neighbourhood drawn as a graph.
// The server's field errors are shown at the field; every action ends in a toast.

import { h, append, clear, button, field, select, table, formDialog, confirmDialog, openDialog, toast, errorText, busy } from '../dom.js';
import { api } from '../api.js';
import { t } from '../i18n.js';
import { can, formatTime, formatDate, departmentTree } from '../state.js';
import { renderMarkdown } from '../markdown.js';
import { loadDirectory, employeeName } from './inbox-common.js';
import {
  VISIBILITIES, LANGS, ARTICLE_RELATION_KINDS, statusBadge, draftBadge, visibilityBadge, langLabel, visibilityLabel, relationLabel,
  kindChip, inLink, nodePath, dateValue, dateMillis, parseTags, fieldErrors, entityPicker,
} from './knowledge-common.js';
import { graphCard } from './knowledge-entities.js';

export async function mountArticle(root, { navigate, id }) {
  const write = can('knowledge.write');
  const manage = can('knowledge.manage');
  const page = h('section', { class: 'page kb-article', testid: 'kb-article-page' });
  root.append(page);
  const [departments, dir] = await Promise.all([
    can('org.read') ? api.list('/api/v1/departments').catch(() => []) : [],
    loadDirectory(),
  ]);
  const tree = departmentTree(departments);
  /** The article as GET /knowledge/articles/{id} answers (relations, learned questions). */
  let detail = null;
  /** The editor on the page: whether it holds unsaved edits, and those edits. */
  let live = null;

  const back = inLink(navigate, '/knowledge', `← ${t('knowledge.back')}`, { class: 'back', testid: 'kb-back' });

  async function load() {
    detail = await api.get(`/api/v1/knowledge/articles/${id}`);
    if (page.isConnected) draw();
  }

  /** Loads the article again; `discard` drops unsaved edits (else they survive the redraw). */
  function reload({ discard = false } = {}) {
    if (discard) live = null;
    load().catch((err) => toast(errorText(err), 'error'));
  }

  /** Keeps the relations and counts of the detail when an action answers with the article. */
  function took(article) {
    detail = { ...detail, ...article };
    draw();
  }

  if (id === null) {
    if (!write) throw { code: 'forbidden', message: '' };
    clear(page).append(back, h('div', { class: 'page-head' }, h('h1', { testid: 'kb-article-title' }, t('knowledge.new_article'))),
      editor(null));
    return;
  }

  // ------------------------------------------------------------ the page

  function draw() {
    const a = detail;
    const shown = a.published || (a.draft && a.draft.content);
    const draft = write ? a.draft : null;
    const overdue = a.review_due && a.review_due <= Date.now();
    // Adding a relation or changing the owner redraws the page; typed text must not be lost.
    const carry = live && live.dirty() ? live.snapshot() : null;
    live = null;
    append(clear(page), [
      back,
      h('div', { class: 'page-head' },
        h('h1', { testid: 'kb-article-title' }, shown ? shown.title : t('knowledge.article_n', { id: a.id })),
        h('div', { class: 'head-buttons' }, statusBadge(a.status), draftBadge(a.draft && a.draft.state),
          a.version ? h('span', { class: 'badge', testid: 'kb-version' }, `v${a.version}`) : null,
          shown ? visibilityBadge(shown.visibility) : null)),
      h('p', { class: 'muted kb-meta', testid: 'kb-meta' },
        t('knowledge.owner_is', { name: employeeName(dir, a.owner_id) }), ' · ',
        h('span', { class: overdue ? 'overdue' : undefined, testid: 'kb-meta-review' },
          a.review_due ? t('knowledge.review_on', { date: formatDate(a.review_due) }) : t('knowledge.no_review_date')),
        a.published_at ? [' · ', t('knowledge.published_on', { time: formatTime(a.published_at) })] : null,
        a.learned_questions ? [' · ', t('knowledge.learned', { n: a.learned_questions })] : null),
      draft && draft.state === 'changes_requested' && draft.review_note
        ? h('div', { class: 'banner warn kb-review-note', role: 'status', testid: 'kb-review-note' },
          h('strong', {}, t('knowledge.changes_requested_note')), ' ', h('span', { testid: 'kb-review-note-text' }, draft.review_note))
        : null,
      h('div', { class: 'kb-layout' },
        h('div', { class: 'kb-main' },
          publishedCard(a),
          write ? editor(a, carry) : null),
        h('div', { class: 'kb-side' },
          manage ? reviewCard(a) : null,
          relationsCard(a),
          versionsCard(a))),
      graphCard({ navigate, url: (depth) => `/api/v1/knowledge/articles/${a.id}/graph?depth=${depth}`, center: { kind: 'article', id: a.id } }),
    ]);
  }

  function publishedCard(a) {
    const p = a.published;
    return h('div', { class: 'card kb-published', testid: 'kb-published' },
      h('h2', {}, a.version ? t('knowledge.published_version', { n: a.version }) : t('knowledge.published_title')),
      p ? [
        h('p', { class: 'muted small' }, langLabel(p.lang), ' · ', visibilityLabel(p.visibility),
          p.tags.length ? [' · ', p.tags.map((x) => h('span', { class: 'chip small', testid: 'kb-tag' }, x))] : null),
        renderMarkdown(p.body, { testid: 'kb-article-body' }),
      ] : h('p', { class: 'muted', testid: 'kb-not-published' }, t('knowledge.not_published')),
      a.status === 'archived' ? h('p', { class: 'banner info' }, t('knowledge.archived_note')) : null);
  }

  // ------------------------------------------------------------ the editor

  function editor(a, carry = null) {
    const draft = a && a.draft;
    const saved = draft ? draft.content : a && a.published ? a.published : { title: '', body: '', lang: null, visibility: 'internal', department_ids: [], tags: [] };
    const content = carry ? carry.content : saved;
    // Carried edits keep the draft they started from, so a save after someone else's still conflicts.
    const base = carry ? carry.base : draft ? draft.updated_at : null;
    let dirty = Boolean(carry);

    const title = h('input', { testid: 'kb-draft-title', value: content.title, maxlength: 200, required: true });
    const body = h('textarea', { testid: 'kb-draft-body', rows: 18, value: content.body, spellcheck: 'true', class: 'kb-source' });
    const preview = h('div', { class: 'kb-preview', testid: 'kb-draft-preview', 'aria-live': 'off' });
    const lang = select([['', t('knowledge.lang_auto')], ...LANGS.map((l) => [l, langLabel(l)])], { testid: 'kb-draft-lang', value: a || carry ? content.lang || '' : '' });
    const visibility = select(VISIBILITIES.map((v) => [v, visibilityLabel(v)]), { testid: 'kb-draft-visibility', value: content.visibility });
    const tags = h('input', { testid: 'kb-draft-tags', value: carry ? carry.tagsText : content.tags.join(', '), placeholder: t('knowledge.tags_placeholder') });
    const chosen = new Set(content.department_ids || []);
    const departmentBox = tree.list.length
      ? h('fieldset', { class: 'kb-departments', testid: 'kb-draft-departments' },
        h('legend', {}, t('knowledge.departments')),
        tree.list.map((x) => h('label', { class: 'check' },
          h('input', { type: 'checkbox', value: x.dept.id, checked: chosen.has(x.dept.id), testid: 'kb-draft-department', dataset: { id: x.dept.id } }),
          h('span', {}, x.path))))
      : h('input', { testid: 'kb-draft-department-ids', value: [...chosen].join(', '), placeholder: t('knowledge.department_ids_placeholder') });
    const departmentField = field(t('knowledge.departments'), departmentBox, t('knowledge.departments_hint'));
    const conflict = h('div', { class: 'banner error', role: 'alert', testid: 'kb-draft-conflict', hidden: true });
    const errors = fieldErrors({ title, body, lang, visibility, department_ids: departmentBox, tags });

    function showDepartments() {
      departmentField.hidden = visibility.value !== 'departments';
    }
    showDepartments();
    visibility.addEventListener('change', showDepartments);

    let frame = null;
    function renderPreview() {
      frame = null;
      preview.replaceChildren(body.value.trim() ? renderMarkdown(body.value) : h('p', { class: 'muted' }, t('knowledge.preview_empty')));
    }
    renderPreview();
    const edited = () => {
      dirty = true;
      if (!frame) frame = requestAnimationFrame(renderPreview);
    };
    body.addEventListener('input', edited);
    for (const control of [title, lang, visibility, tags, departmentBox]) {
      control.addEventListener('input', () => { dirty = true; });
      control.addEventListener('change', () => { dirty = true; });
    }

    function departmentIds() {
      if (departmentBox.tagName === 'FIELDSET') {
        return [...departmentBox.querySelectorAll('input:checked')].map((x) => Number(x.value));
      }
      return departmentBox.value.split(/[,，\s]+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
    }

    live = {
      dirty: () => dirty,
      snapshot: () => ({
        base,
        tagsText: tags.value,
        content: {
          title: title.value, body: body.value, lang: lang.value || null, visibility: visibility.value, department_ids: departmentIds(), tags: [],
        },
      }),
    };

    function input() {
      return {
        title: title.value.trim(),
        body: body.value,
        lang: lang.value || null,
        visibility: visibility.value,
        department_ids: visibility.value === 'departments' ? departmentIds() : [],
        tags: parseTags(tags.value),
      };
    }

    /** Client checks that the server would make too, shown at the field. */
    function check(data) {
      if (!data.title) {
        errors.mark('title', t('knowledge.title_required'));
        throw { code: 'client', text: t('knowledge.title_required') };
      }
      if (data.visibility === 'departments' && !data.department_ids.length) {
        errors.mark('department_ids', t('knowledge.departments_required'));
        throw { code: 'client', text: t('knowledge.departments_required') };
      }
    }

    function failed(err) {
      if (err && err.status === 409 && err.code === 'draft_conflict') {
        conflict.replaceChildren(
          h('strong', {}, t('knowledge.conflict_title')), ' ', t('knowledge.conflict_text'), ' ',
          button(t('knowledge.conflict_reload'), {
            class: 'small', testid: 'kb-draft-reload',
            onclick: async () => {
              if (await confirmDialog(t('knowledge.conflict_reload_confirm'), { confirmLabel: t('knowledge.conflict_reload') })) reload({ discard: true });
            },
          }));
        conflict.hidden = false;
        toast(t('knowledge.conflict_toast'), 'error');
        return;
      }
      errors.show(err);
      toast(errorText(err), 'error');
    }

    async function save({ quietly = false } = {}) {
      errors.clear();
      conflict.hidden = true;
      const data = input();
      check(data);
      const saved = await api.put(`/api/v1/knowledge/articles/${id}/draft`, { ...data, base_updated_at: base });
      dirty = false;
      if (!quietly) toast(t('knowledge.draft_saved'));
      return saved;
    }

    const actions = [];
    if (!a) {
      const create = button(t('knowledge.create_draft'), {
        class: 'primary', testid: 'kb-draft-create',
        onclick: () => busy(create, async () => {
          errors.clear();
          try {
            const data = input();
            check(data);
            const created = await api.post('/api/v1/knowledge/articles', data);
            toast(t('knowledge.draft_created'));
            navigate(`/knowledge/articles/${created.id}`, { replace: true });
          } catch (err) {
            if (err.code !== 'client') failed(err);
          }
        }),
      });
      actions.push(create);
    } else {
      const saveButton = button(t('knowledge.save_draft'), {
        class: 'primary', testid: 'kb-draft-save',
        onclick: () => busy(saveButton, async () => {
          try {
            took(await save());
          } catch (err) {
            if (err.code !== 'client') failed(err);
          }
        }),
      });
      actions.push(saveButton);
      if (!draft || draft.state !== 'in_review') {
        const submit = button(t('knowledge.submit'), {
          testid: 'kb-draft-submit',
          onclick: () => busy(submit, async () => {
            try {
              if (dirty || !draft) await save({ quietly: true });
              took(await api.post(`/api/v1/knowledge/articles/${id}/submit`));
              toast(t('knowledge.submitted'));
            } catch (err) {
              if (err.code !== 'client') failed(err);
            }
          }),
        });
        actions.push(submit);
      } else {
        actions.push(h('span', { class: 'muted small', testid: 'kb-in-review' }, t('knowledge.in_review_note')));
      }
      if (draft) {
        const discard = button(t('knowledge.discard'), {
          class: 'danger-text', testid: 'kb-draft-discard',
          onclick: async () => {
            const ok = await confirmDialog(a.version ? t('knowledge.discard_confirm') : t('knowledge.discard_confirm_new'),
              { confirmLabel: t('knowledge.discard') });
            if (!ok) return;
            try {
              const left = await api.del(`/api/v1/knowledge/articles/${id}/draft`);
              toast(t('knowledge.discarded'));
              live = null;
              if (left) took(left);
              else navigate('/knowledge', { replace: true });
            } catch (err) {
              toast(errorText(err), 'error');
            }
          },
        });
        actions.push(discard);
      }
    }

    const heading = a
      ? (draft ? t('knowledge.draft_title', { time: formatTime(draft.updated_at) }) : t('knowledge.edit_title'))
      : t('knowledge.new_draft_title');
    return h('div', { class: 'card kb-editor', testid: 'kb-editor' },
      h('div', { class: 'page-head' }, h('h2', {}, heading),
        draft ? h('span', { class: 'muted small' }, t('knowledge.draft_by', { name: employeeName(dir, draft.author_id) })) : null),
      !draft && a ? h('p', { class: 'muted small' }, t('knowledge.edit_hint')) : null,
      conflict,
      h('div', { class: 'form' },
        field(t('knowledge.title'), title),
        h('div', { class: 'row3' }, field(t('knowledge.language'), lang), field(t('knowledge.visibility'), visibility),
          field(t('knowledge.tags'), tags, t('knowledge.tags_hint'))),
        departmentField,
        h('div', { class: 'kb-split' },
          field(t('knowledge.body'), body, t('knowledge.body_hint')),
          h('div', { class: 'field' }, h('span', { class: 'label' }, t('knowledge.preview')), preview)),
        h('div', { class: 'form-actions kb-actions' }, actions)));
  }

  // ------------------------------------------------------------ review

  function reviewCard(a) {
    const nodes = [];
    const act = (label, testid, path, done, cls) => {
      const b = button(label, {
        class: cls, testid,
        onclick: () => busy(b, async () => {
          try {
            took(await api.post(`/api/v1/knowledge/articles/${a.id}/${path}`));
            toast(done);
          } catch (err) {
            toast(errorText(err), 'error');
          }
        }),
      });
      return b;
    };
    if (a.draft) {
      nodes.push(h('p', { class: 'small' }, t('knowledge.draft_state_label'), ' ', draftBadge(a.draft.state)));
      const row = [act(t('knowledge.publish'), 'kb-publish', 'publish', t('knowledge.published_toast'), 'primary')];
      if (a.draft.state === 'in_review') {
        row.push(button(t('knowledge.request_changes'), { testid: 'kb-request-changes', onclick: () => requestChanges(a) }));
      }
      nodes.push(h('div', { class: 'toolbar-buttons' }, row));
    } else {
      nodes.push(h('p', { class: 'muted small' }, t('knowledge.no_draft_to_review')));
    }
    if (a.status === 'published') nodes.push(h('p', {}, act(t('knowledge.archive'), 'kb-archive', 'archive', t('knowledge.archived_toast'), 'danger-text')));
    if (a.status === 'archived') nodes.push(h('p', {}, act(t('knowledge.unarchive'), 'kb-unarchive', 'unarchive', t('knowledge.unarchived_toast'))));

    const employees = [...dir.employees.values()].sort((x, y) => x.display_name.localeCompare(y.display_name));
    const owner = employees.length
      ? select(employees.map((e) => [e.id, `${e.display_name} (${e.username})`]), { testid: 'kb-owner', value: a.owner_id })
      : h('input', { type: 'number', min: 1, step: 1, testid: 'kb-owner', value: a.owner_id });
    if (employees.length && !dir.employees.has(a.owner_id)) owner.prepend(h('option', { value: a.owner_id }, employeeName(dir, a.owner_id)));
    owner.value = String(a.owner_id);
    const due = h('input', { type: 'date', testid: 'kb-review-due', value: dateValue(a.review_due) });
    const errors = fieldErrors({ owner_id: owner, review_due: due });
    const save = button(t('common.save'), {
      class: 'small', testid: 'kb-owner-save',
      onclick: () => busy(save, async () => {
        errors.clear();
        try {
          took(await api.patch(`/api/v1/knowledge/articles/${a.id}`, { owner_id: Number(owner.value), review_due: dateMillis(due.value) }));
          toast(t('knowledge.owner_saved'));
        } catch (err) {
          errors.show(err);
          toast(errorText(err), 'error');
        }
      }),
    });
    nodes.push(h('div', { class: 'form kb-owner-form' }, field(t('knowledge.owner'), owner), field(t('knowledge.review_due'), due, t('knowledge.review_due_hint')),
      h('div', { class: 'form-actions' }, save)));
    return h('div', { class: 'card', testid: 'kb-review-card' }, h('h2', {}, t('knowledge.review_title')), nodes);
  }

  function requestChanges(a) {
    const note = h('textarea', { rows: 4, testid: 'kb-review-note-input', maxlength: 2000 });
    const errors = fieldErrors({ note });
    formDialog({
      title: t('knowledge.request_changes'), testid: 'kb-request-changes-dialog', submitLabel: t('knowledge.request_changes'),
      fields: [field(t('knowledge.review_note'), note, t('knowledge.review_note_hint'))],
      onSubmit: async () => {
        errors.clear();
        if (!note.value.trim()) {
          errors.mark('note', t('knowledge.note_required'));
          throw { code: 'client', text: t('knowledge.note_required') };
        }
        try {
          return await api.post(`/api/v1/knowledge/articles/${a.id}/request-changes`, { note: note.value.trim() });
        } catch (err) {
          errors.show(err);
          throw err;
        }
      },
      onDone: (article) => {
        toast(t('knowledge.changes_requested_toast'));
        took(article);
      },
    });
  }

  // ------------------------------------------------------------ relations

  function relationsCard(a) {
    const here = (node) => node.kind === 'article' && node.id === a.id;
    const rows = a.relations.map((r) => {
      const outgoing = here(r.from);
      const other = outgoing ? r.to : r.from;
      return h('li', { class: 'kb-relation', testid: 'kb-relation', dataset: { id: r.id, kind: r.kind, other: `${other.kind}:${other.id}` } },
        h('span', { class: 'muted small', title: outgoing ? t('knowledge.relation_out_title') : t('knowledge.relation_in_title') },
          t(outgoing ? 'knowledge.relation_to' : 'knowledge.relation_from', { kind: relationLabel(r.kind) })), ' ',
        other.entity_kind ? kindChip(other.entity_kind) : null, ' ',
        inLink(navigate, nodePath(other), other.label, { testid: 'kb-relation-link' }),
        write ? button('×', {
          class: 'icon', testid: 'kb-relation-remove', 'aria-label': t('knowledge.remove_relation'),
          onclick: async () => {
            if (!await confirmDialog(t('knowledge.remove_relation_confirm', { name: other.label }), { confirmLabel: t('knowledge.remove_relation') })) return;
            try {
              await api.del(`/api/v1/knowledge/relations/${r.id}`);
              toast(t('knowledge.relation_removed'));
              reload();
            } catch (err) {
              toast(errorText(err), 'error');
            }
          },
        }) : null);
    });
    return h('div', { class: 'card', testid: 'kb-relations' },
      h('div', { class: 'page-head' }, h('h2', {}, t('knowledge.relations')),
        write ? button(t('knowledge.add_relation'), { class: 'small', testid: 'kb-relation-add', onclick: () => addRelation(a) }) : null),
      rows.length ? h('ul', { class: 'kb-relation-list' }, rows) : h('p', { class: 'muted small' }, t('knowledge.no_relations')));
  }

  function addRelation(a) {
    const kind = select(ARTICLE_RELATION_KINDS.map((k) => [k, relationLabel(k)]), { testid: 'kb-relation-kind', value: 'about' });
    const picker = entityPicker();
    const errors = fieldErrors({ kind, to: picker.input, from: picker.input });
    formDialog({
      title: t('knowledge.add_relation'), testid: 'kb-relation-dialog', submitLabel: t('knowledge.add_relation'), wide: true,
      fields: [field(t('knowledge.relation_kind'), kind, t('knowledge.article_relation_hint')), field(t('knowledge.entity'), picker.node)],
      onSubmit: async () => {
        errors.clear();
        const entity = picker.chosen();
        if (!entity) {
          errors.mark('to', t('knowledge.pick_entity'));
          throw { code: 'client', text: t('knowledge.pick_entity') };
        }
        const article = { kind: 'article', id: a.id };
        const other = { kind: 'entity', id: entity.id };
        // A known issue is fixed by the article; the other kinds go from the article.
        const body = kind.value === 'fixed_by' ? { from: other, kind: kind.value, to: article } : { from: article, kind: kind.value, to: other };
        try {
          await api.post('/api/v1/knowledge/relations', body);
          return entity;
        } catch (err) {
          errors.show(err);
          throw err;
        }
      },
      onDone: (entity) => {
        toast(t('knowledge.relation_added', { name: entity.name }));
        reload();
      },
    });
  }

  // ------------------------------------------------------------ versions

  function versionsCard(a) {
    const box = h('div', { testid: 'kb-versions' }, h('p', { class: 'muted small' }, t('knowledge.loading')));
    if (!a.version) {
      box.replaceChildren(h('p', { class: 'muted small' }, t('knowledge.no_versions')));
    } else {
      api.list(`/api/v1/knowledge/articles/${a.id}/versions`).then((items) => {
        box.replaceChildren(table([t('knowledge.version'), t('knowledge.published_at'), h('span', { class: 'sr-only' }, t('common.actions'))],
          items.map((v) => h('tr', { testid: 'kb-version-row', dataset: { version: v.version } },
            h('td', {}, h('div', { class: 'strong' }, `v${v.version}`), h('div', { class: 'small' }, v.title)),
            h('td', { class: 'small' }, formatTime(v.published_at), h('div', { class: 'muted' }, employeeName(dir, v.published_by))),
            h('td', { class: 'actions' },
              button(t('common.view'), { class: 'small', testid: 'kb-version-view', onclick: () => viewVersion(a, v.version) }),
              write ? button(t('knowledge.restore'), { class: 'small', testid: 'kb-version-restore', onclick: () => restore(a, v.version) }) : null)))));
      }).catch((err) => box.replaceChildren(h('p', { class: 'form-error' }, errorText(err))));
    }
    return h('div', { class: 'card' }, h('h2', {}, t('knowledge.versions')), box);
  }

  async function viewVersion(a, version) {
    try {
      const v = await api.get(`/api/v1/knowledge/articles/${a.id}/versions/${version}`);
      openDialog({
        title: t('knowledge.version_title', { n: v.version, title: v.content.title }), testid: 'kb-version-dialog', wide: true,
        content: [
          h('p', { class: 'muted small' }, t('knowledge.version_meta', {
            time: formatTime(v.published_at), by: employeeName(dir, v.published_by), author: employeeName(dir, v.author_id),
          }), ' · ', langLabel(v.content.lang), ' · ', visibilityLabel(v.content.visibility)),
          renderMarkdown(v.content.body, { testid: 'kb-version-body' }),
        ],
      });
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  async function restore(a, version) {
    const message = a.draft ? t('knowledge.restore_confirm_draft', { n: version }) : t('knowledge.restore_confirm', { n: version });
    if (!await confirmDialog(message, { confirmLabel: t('knowledge.restore'), danger: Boolean(a.draft) })) return;
    try {
      const restored = await api.post(`/api/v1/knowledge/articles/${a.id}/restore`, { version, base_updated_at: a.draft ? a.draft.updated_at : undefined });
      live = null;
      took(restored);
      toast(t('knowledge.restored', { n: version }));
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  await load();
}
