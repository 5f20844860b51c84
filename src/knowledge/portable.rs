//! Import and export of the knowledge base: one JSON bundle (articles, entities, relations,
//! synonyms), or Markdown files with TOML front matter (one file, or a zip of them).
//!
//! Entities are matched by their `key`, so importing the same bundle twice updates entities
//! instead of doubling them; articles are always added (as drafts, or published when asked).

use std::collections::HashMap;
use std::io::{Cursor, Read, Write};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::knowledge::service::{self, ContentInput, EntityInput, NewArticle, RelationInput};
use crate::knowledge::{
    Article, ArticleStatus, EntityKind, NodeKind, NodeRef, RelationKind, Visibility,
};
use crate::storage::WriteTxn;
use crate::text::Language;

pub const BUNDLE_FORMAT: &str = "allhands-knowledge";
/// Files a zip may hold, and their total size, so that a small upload cannot unpack into gigabytes.
const MAX_ZIP_FILES: usize = 5000;
const MAX_UNPACKED_BYTES: u64 = 200 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Bundle {
    /// `allhands-knowledge`.
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub entities: Vec<BundleEntity>,
    #[serde(default)]
    pub relations: Vec<BundleRelation>,
    #[serde(default)]
    pub articles: Vec<BundleArticle>,
    #[serde(default)]
    pub synonyms: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BundleEntity {
    /// The entity's stable key (also accepted as `id`).
    #[serde(alias = "id")]
    pub key: String,
    pub kind: EntityKind,
    #[serde(default)]
    pub name: Option<String>,
    /// Accepted in place of `name` (the English name), the Chinese one becoming an alias.
    #[serde(default, skip_serializing)]
    pub name_en: Option<String>,
    #[serde(default, skip_serializing)]
    pub name_zh: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// A relation between entity keys, or from an article of the bundle (`article:<key>`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BundleRelation {
    pub from: String,
    #[serde(rename = "type", alias = "kind")]
    pub kind: RelationKind,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct BundleArticle {
    /// A key other relations of the bundle may name as `article:<key>` (also accepted as `id`).
    #[serde(default, alias = "id")]
    pub key: Option<String>,
    pub title: String,
    pub body: String,
    #[serde(default)]
    pub lang: Option<Language>,
    #[serde(default)]
    pub visibility: Visibility,
    #[serde(default)]
    pub department_ids: Vec<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Keys of entities the article is about.
    #[serde(default)]
    pub entities: Vec<String>,
    /// Export only: the article's state when exported.
    #[serde(default, skip_deserializing)]
    pub status: Option<ArticleStatus>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct ImportReport {
    pub articles_created: usize,
    pub articles_published: usize,
    pub entities_created: usize,
    pub entities_updated: usize,
    pub relations_created: usize,
    /// Relations the store had already.
    pub relations_existing: usize,
    pub synonym_sets: usize,
}

fn bad_import(message: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::InvalidField, message)
}

/// Reads an upload: a JSON bundle, a Markdown file, or a zip of Markdown files (and at most one
/// bundle). `name` is the uploaded file's name.
pub fn parse_upload(name: &str, bytes: &[u8]) -> AppResult<Bundle> {
    let lower = name.to_lowercase();
    if bytes.starts_with(b"PK\x03\x04") || lower.ends_with(".zip") {
        return parse_zip(bytes);
    }
    if lower.ends_with(".md") || lower.ends_with(".markdown") {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| bad_import(format!("{name}: is not UTF-8 text")))?;
        return Ok(Bundle {
            format: None,
            entities: Vec::new(),
            relations: Vec::new(),
            articles: vec![parse_markdown(name, text)?],
            synonyms: Vec::new(),
        });
    }
    parse_bundle(bytes)
}

pub fn parse_bundle(bytes: &[u8]) -> AppResult<Bundle> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    let bundle: Bundle = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            AppError::new(
                ErrorCode::InvalidJson,
                format!("the bundle is not JSON: {inner}"),
            )
        } else {
            bad_import(format!("{path}: {inner}"))
        }
    })?;
    if let Some(format) = &bundle.format
        && format != BUNDLE_FORMAT
    {
        return Err(bad_import(format!(
            "format: {format:?} is not {BUNDLE_FORMAT:?}"
        )));
    }
    Ok(bundle)
}

fn parse_zip(bytes: &[u8]) -> AppResult<Bundle> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| bad_import(format!("the zip file cannot be read: {e}")))?;
    if archive.len() > MAX_ZIP_FILES {
        return Err(bad_import(format!(
            "the zip file holds more than {MAX_ZIP_FILES} files"
        )));
    }
    let mut bundle = Bundle {
        format: None,
        entities: Vec::new(),
        relations: Vec::new(),
        articles: Vec::new(),
        synonyms: Vec::new(),
    };
    let mut unpacked = 0u64;
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| bad_import(format!("the zip file cannot be read: {e}")))?;
        if file.is_dir() {
            continue;
        }
        let name = file
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| format!("file {i}"));
        let mut content = Vec::new();
        let limit = MAX_UNPACKED_BYTES - unpacked;
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut content)
            .map_err(|e| bad_import(format!("{name}: cannot be unpacked: {e}")))?;
        unpacked += content.len() as u64;
        if unpacked > MAX_UNPACKED_BYTES {
            return Err(AppError::new(
                ErrorCode::PayloadTooLarge,
                format!("the zip file unpacks to more than {MAX_UNPACKED_BYTES} bytes"),
            ));
        }
        let lower = name.to_lowercase();
        if lower.ends_with(".md") || lower.ends_with(".markdown") {
            let text = std::str::from_utf8(&content)
                .map_err(|_| bad_import(format!("{name}: is not UTF-8 text")))?;
            bundle.articles.push(parse_markdown(&name, text)?);
        } else if lower.ends_with(".json") {
            let inner =
                parse_bundle(&content).map_err(|e| bad_import(format!("{name}: {}", e.message)))?;
            bundle.entities.extend(inner.entities);
            bundle.relations.extend(inner.relations);
            bundle.articles.extend(inner.articles);
            bundle.synonyms.extend(inner.synonyms);
        }
    }
    Ok(bundle)
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    lang: Option<Language>,
    #[serde(default)]
    visibility: Option<Visibility>,
    #[serde(default)]
    department_ids: Vec<u64>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    entities: Vec<String>,
    #[serde(default)]
    status: Option<ArticleStatus>,
    #[serde(default)]
    version: Option<u32>,
}

/// A Markdown article: optional TOML front matter between `+++` lines, then the body. Without a
/// `title` in the front matter, a leading `# heading` is the title.
pub fn parse_markdown(name: &str, text: &str) -> AppResult<BundleArticle> {
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let (front, body) = match text.strip_prefix("+++\n") {
        Some(rest) => {
            let end = rest.find("\n+++").ok_or_else(|| {
                bad_import(format!("{name}: the front matter has no closing +++"))
            })?;
            let front: FrontMatter = toml::from_str(&rest[..end])
                .map_err(|e| bad_import(format!("{name}: front matter: {}", e.message())))?;
            let after = &rest[end + 4..];
            (front, after.trim_start_matches('\n').to_string())
        }
        None => (FrontMatter::default(), text.clone()),
    };
    let (title, body) = match front.title {
        Some(title) => (title, body),
        None => {
            let trimmed = body.trim_start();
            match trimmed.strip_prefix("# ") {
                Some(rest) => {
                    let (title, after) = rest.split_once('\n').unwrap_or((rest, ""));
                    (title.trim().to_string(), after.trim_start().to_string())
                }
                None => {
                    return Err(bad_import(format!(
                        "{name}: no title (a `title` in the front matter, or a first line `# Title`)"
                    )));
                }
            }
        }
    };
    Ok(BundleArticle {
        key: front.key,
        title,
        body: body.trim_end().to_string(),
        lang: front.lang,
        visibility: front.visibility.unwrap_or_default(),
        department_ids: front.department_ids,
        tags: front.tags,
        entities: front.entities,
        status: None,
    })
}

/// Applies a bundle in one write. `publish`: articles are published at once, else drafts.
pub fn import(
    txn: &WriteTxn,
    bundle: &Bundle,
    author: u64,
    publish: bool,
    now: Millis,
) -> AppResult<ImportReport> {
    let mut report = ImportReport::default();
    let mut entity_ids: HashMap<String, u64> = HashMap::new();
    for (i, e) in bundle.entities.iter().enumerate() {
        let mut aliases = e.aliases.clone();
        let name = match (&e.name, &e.name_en, &e.name_zh) {
            (Some(n), _, _) => n.clone(),
            (None, Some(en), zh) => {
                aliases.extend(zh.iter().cloned());
                en.clone()
            }
            (None, None, Some(zh)) => zh.clone(),
            (None, None, None) => {
                return Err(bad_import(format!("entities[{i}]: name: missing")));
            }
        };
        let existing = service::entity_by_key(txn, &e.key)?;
        let input = EntityInput {
            kind: e.kind,
            name,
            aliases,
            description: e.description.clone(),
            key: Some(e.key.clone()),
        };
        let entity = service::put_entity(txn, existing, &input, now)
            .map_err(|err| bad_import(format!("entities[{i}]: {}", err.message)))?;
        if existing.is_some() {
            report.entities_updated += 1;
        } else {
            report.entities_created += 1;
        }
        entity_ids.insert(e.key.clone(), entity.id);
    }
    let entity = |key: &str, field: &str| -> AppResult<u64> {
        match entity_ids.get(key) {
            Some(id) => Ok(*id),
            None => service::entity_by_key(txn, key)?
                .ok_or_else(|| bad_import(format!("{field}: no entity has the key {key:?}"))),
        }
    };
    let mut article_ids: HashMap<String, u64> = HashMap::new();
    for (i, a) in bundle.articles.iter().enumerate() {
        let mut about = Vec::new();
        for key in &a.entities {
            about.push(entity(key, &format!("articles[{i}].entities"))?);
        }
        let input = NewArticle {
            content: ContentInput {
                title: a.title.clone(),
                body: a.body.clone(),
                lang: a.lang,
                visibility: a.visibility,
                department_ids: a.department_ids.clone(),
                tags: a.tags.clone(),
            },
            owner_id: None,
            review_due: None,
            entity_ids: about,
        };
        let article = service::create_article(txn, author, &input, now)
            .map_err(|err| bad_import(format!("articles[{i}]: {}", err.message)))?;
        report.articles_created += 1;
        report.relations_created += input.entity_ids.len();
        if publish {
            service::publish(txn, article.id, author, now)?;
            report.articles_published += 1;
        }
        if let Some(key) = &a.key {
            article_ids.insert(key.clone(), article.id);
        }
    }
    for (i, r) in bundle.relations.iter().enumerate() {
        let node = |name: &str, field: &str| -> AppResult<NodeRef> {
            if let Some(key) = name.strip_prefix("article:")
                && let Some(id) = article_ids.get(key)
            {
                return Ok(NodeRef::article(*id));
            }
            Ok(NodeRef::entity(entity(name, field)?))
        };
        let input = RelationInput {
            from: node(&r.from, &format!("relations[{i}].from"))?,
            kind: r.kind,
            to: node(&r.to, &format!("relations[{i}].to"))?,
        };
        match service::add_relation(txn, &input, now) {
            Ok(_) => report.relations_created += 1,
            Err(e) if e.code == ErrorCode::Conflict => report.relations_existing += 1,
            Err(e) => return Err(bad_import(format!("relations[{i}]: {}", e.message))),
        }
    }
    if !bundle.synonyms.is_empty() {
        service::replace_synonyms(txn, &bundle.synonyms, now)?;
        report.synonym_sets = bundle.synonyms.len();
    }
    Ok(report)
}

/// Everything the reader may read, as a bundle. Articles are exported as their working content
/// (the draft when there is one) keyed `article-<id>`.
pub fn export(
    txn: &redb::ReadTransaction,
    readable: &dyn Fn(&Article) -> bool,
) -> AppResult<Bundle> {
    let entities = service::entities(txn)?;
    let entity_key: HashMap<u64, String> = entities
        .iter()
        .map(|e| {
            (
                e.id,
                e.key.clone().unwrap_or_else(|| format!("entity-{}", e.id)),
            )
        })
        .collect();
    let mut bundle = Bundle {
        format: Some(BUNDLE_FORMAT.to_string()),
        entities: entities
            .iter()
            .map(|e| BundleEntity {
                key: entity_key[&e.id].clone(),
                kind: e.kind,
                name: Some(e.name.clone()),
                name_en: None,
                name_zh: None,
                aliases: e.aliases.clone(),
                description: e.description.clone(),
            })
            .collect(),
        relations: Vec::new(),
        articles: Vec::new(),
        synonyms: service::synonym_sets(txn)?
            .into_iter()
            .map(|s| s.terms)
            .collect(),
    };
    let mut exported: HashMap<u64, String> = HashMap::new();
    for article in service::articles(txn)? {
        if !readable(&article) {
            continue;
        }
        let Some(content) = article.working() else {
            continue;
        };
        let key = format!("article-{}", article.id);
        exported.insert(article.id, key.clone());
        bundle.articles.push(BundleArticle {
            key: Some(key),
            title: content.title.clone(),
            body: content.body.clone(),
            lang: Some(content.lang),
            visibility: content.visibility,
            department_ids: content.department_ids.clone(),
            tags: content.tags.clone(),
            entities: Vec::new(),
            status: Some(article.status),
        });
    }
    for relation in service::relations(txn)? {
        let name = |node: NodeRef| match node.kind {
            NodeKind::Entity => entity_key.get(&node.id).cloned(),
            NodeKind::Article => exported.get(&node.id).map(|k| format!("article:{k}")),
        };
        let (Some(from), Some(to)) = (name(relation.from), name(relation.to)) else {
            continue;
        };
        if relation.kind == RelationKind::About
            && relation.from.kind == NodeKind::Article
            && relation.to.kind == NodeKind::Entity
            && let Some(article) = bundle
                .articles
                .iter_mut()
                .find(|a| a.key.as_deref() == Some(&from["article:".len()..]))
        {
            article.entities.push(to);
            continue;
        }
        bundle.relations.push(BundleRelation {
            from,
            kind: relation.kind,
            to,
        });
    }
    Ok(bundle)
}

/// The bundle as a zip: one Markdown file per article (TOML front matter) and `graph.json`
/// with the entities, the other relations and the synonyms.
pub fn to_markdown_zip(bundle: &Bundle) -> AppResult<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let fail = |e: &dyn std::fmt::Display| AppError::internal(format!("zip: {e}"));
    for article in &bundle.articles {
        let front = FrontMatter {
            key: article.key.clone(),
            title: Some(article.title.clone()),
            lang: article.lang,
            visibility: Some(article.visibility),
            department_ids: article.department_ids.clone(),
            tags: article.tags.clone(),
            entities: article.entities.clone(),
            status: article.status,
            version: None,
        };
        let front = toml::to_string(&front).map_err(|e| fail(&e))?;
        let name = format!(
            "articles/{}.md",
            article.key.as_deref().unwrap_or("article")
        );
        zip.start_file(name, options).map_err(|e| fail(&e))?;
        write!(zip, "+++\n{front}+++\n\n{}\n", article.body).map_err(|e| fail(&e))?;
    }
    let graph = Bundle {
        format: Some(BUNDLE_FORMAT.to_string()),
        entities: bundle.entities.clone(),
        relations: bundle.relations.clone(),
        articles: Vec::new(),
        synonyms: bundle.synonyms.clone(),
    };
    zip.start_file("graph.json", options)
        .map_err(|e| fail(&e))?;
    zip.write_all(&serde_json::to_vec_pretty(&graph).map_err(|e| fail(&e))?)
        .map_err(|e| fail(&e))?;
    let cursor = zip.finish().map_err(|e| fail(&e))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_with_front_matter_and_heading() {
        let a = parse_markdown(
            "a.md",
            "+++\ntitle = \"退货流程\"\nlang = \"zh\"\ntags = [\"售后\"]\nentities = [\"policy:returns\"]\n+++\n\n正文\n",
        )
        .unwrap();
        assert_eq!(a.title, "退货流程");
        assert_eq!(a.body, "正文");
        assert_eq!(a.entities, ["policy:returns"]);
        let b = parse_markdown("b.md", "# Returns\n\nSend it back.\n").unwrap();
        assert_eq!(
            (b.title.as_str(), b.body.as_str()),
            ("Returns", "Send it back.")
        );
        assert!(parse_markdown("c.md", "no title").is_err());
        assert!(parse_markdown("d.md", "+++\ntitle = 1\n").is_err());
        assert!(parse_markdown("e.md", "+++\nunknown = 1\n+++\n# T\n").is_err());
    }

    #[test]
    fn a_broken_zip_is_an_error_not_a_panic() {
        assert!(parse_upload("x.zip", b"PK\x03\x04garbage").is_err());
        assert!(parse_upload("x.json", b"{\"articles\": 3}").is_err());
    }

    #[test]
    fn markdown_zip_round_trips() {
        let bundle = Bundle {
            format: None,
            entities: vec![],
            relations: vec![],
            articles: vec![parse_markdown("a.md", "# Title\n\nBody **bold**").unwrap()],
            synonyms: vec![vec!["return".into(), "refund".into()]],
        };
        let zip = to_markdown_zip(&bundle).unwrap();
        let back = parse_upload("k.zip", &zip).unwrap();
        assert_eq!(back.articles[0].title, "Title");
        assert_eq!(back.articles[0].body, "Body **bold**");
        assert_eq!(back.synonyms, bundle.synonyms);
    }
}
