//! The knowledge graph as search sees it: entities (products, components, known issues,
//! policies, teams) with their names and aliases, and typed relations between them. A question
//! that names an entity reaches it and, along the expanding relations, what it is made of and
//! its known issues: articles about those get a boost, and the path that led there.
//!
//! Plain data in, so the server can feed it from its store: `Entity`, `Relation`, and each
//! article's entity ids in `IndexedArticle::entities`.

use std::collections::HashMap;

use crate::knowledge::matcher::{PhraseMatcher, Prepared};

/// Relations followed from an entity the question names: a product's components, a
/// component's known issues.
pub const EXPANDING: &[&str] = &["has_component", "has_known_issue"];

/// How far along the expanding relations a question reaches.
const MAX_HOPS: usize = 2;

/// What an entity's weight keeps at each hop away from the named one.
const HOP_WEIGHT: f32 = 0.6;

/// A thing articles are about.
#[derive(Debug, Clone, PartialEq)]
pub struct Entity {
    /// Such as `product:cam-c3`.
    pub id: String,
    /// Names and aliases in any language, such as "Cam C3", "摄像头", "camera".
    pub names: Vec<String>,
}

/// A typed edge between two entities, such as `product:cam-c3 has_component
/// component:cam-night-vision`.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub from: String,
    /// Such as `has_component`, `has_known_issue`, `governed_by`; see `EXPANDING`.
    pub kind: String,
    pub to: String,
}

/// An entity a question reached: named by it (weight 1, path of one id), named by a synonym of
/// its words (less), or through expanding relations (less per hop, path `[named, relation,
/// entity, relation, ..., reached]`). Reached several ways, the weights add up.
#[derive(Debug, Clone, PartialEq)]
pub struct Reached {
    /// The entity id.
    pub entity: String,
    /// How strongly the question points at it.
    pub weight: f32,
    /// The best path.
    pub path: Vec<String>,
    /// The weight of the best path alone.
    best: f32,
    /// How many expanding relations lead down to it: 0 for a product, 2 for a known issue.
    pub(crate) depth: usize,
}

/// Entities and relations, ready to find what a question names.
#[derive(Default)]
pub struct Graph {
    entities: Vec<Entity>,
    by_id: HashMap<String, usize>,
    /// Expanding relations from each entity: (relation, target).
    down: Vec<Vec<(String, usize)>>,
    /// Expanding relations into each entity: its owners.
    up: Vec<Vec<usize>>,
    /// For each phrase number of `matcher`, its entity and the phrase.
    phrase_entity: Vec<usize>,
    phrase_text: Vec<String>,
    matcher: PhraseMatcher,
}

impl Graph {
    /// A graph of these entities and relations; relations naming an unknown entity are left
    /// out.
    pub fn new(entities: Vec<Entity>, relations: Vec<Relation>) -> Graph {
        let by_id: HashMap<String, usize> = entities
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
        let mut down = vec![Vec::new(); entities.len()];
        let mut up = vec![Vec::new(); entities.len()];
        for r in relations {
            if !EXPANDING.contains(&r.kind.as_str()) {
                continue;
            }
            if let (Some(&from), Some(&to)) = (by_id.get(&r.from), by_id.get(&r.to)) {
                down[from].push((r.kind, to));
                up[to].push(from);
            }
        }
        let mut phrase_entity = Vec::new();
        let mut phrase_text = Vec::new();
        let mut phrases = Vec::new();
        for (i, e) in entities.iter().enumerate() {
            for name in &e.names {
                phrases.push((phrase_entity.len(), name.as_str()));
                phrase_entity.push(i);
                phrase_text.push(name.clone());
            }
        }
        let matcher = PhraseMatcher::new(phrases);
        Graph {
            entities,
            by_id,
            down,
            up,
            phrase_entity,
            phrase_text,
            matcher,
        }
    }

    /// The longest chain of expanding relations that leads down to an entity.
    fn depth(&self, i: usize) -> usize {
        self.up[i]
            .iter()
            .map(|&u| 1 + self.depth(u).min(MAX_HOPS))
            .max()
            .unwrap_or(0)
    }

    /// The names and aliases the question uses.
    pub(crate) fn names_in(&self, question: &Prepared) -> Vec<&str> {
        self.matcher
            .find(question)
            .into_iter()
            .map(|p| self.phrase_text[p].as_str())
            .collect()
    }

    /// The entity with this id.
    pub fn entity(&self, id: &str) -> Option<&Entity> {
        self.by_id.get(id).map(|&i| &self.entities[i])
    }

    /// Names and aliases of these entities and of what they belong to (a component's product,
    /// a known issue's component and product): what an article about them is about.
    pub fn about(&self, ids: &[String]) -> Vec<String> {
        let mut seen = Vec::new();
        let mut stack: Vec<usize> = ids
            .iter()
            .filter_map(|id| self.by_id.get(id))
            .copied()
            .collect();
        while let Some(i) = stack.pop() {
            if seen.contains(&i) {
                continue;
            }
            seen.push(i);
            stack.extend(&self.up[i]);
        }
        seen.iter()
            .flat_map(|&i| self.entities[i].names.iter().cloned())
            .collect()
    }

    /// The entities a question names, and those reached from them along the expanding
    /// relations. An entity reached from several named ones (a known issue whose product and
    /// symptom the question both names) adds up their weights; its path is the best one.
    /// Also from entities that only `also` (the terms synonyms brought) name, at `also`'s
    /// weight.
    pub(crate) fn reach(&self, question: &Prepared, also: (&[&Prepared], f32)) -> Vec<Reached> {
        let mut named: Vec<(usize, f32)> = Vec::new();
        for phrase in self.matcher.find(question) {
            let i = self.phrase_entity[phrase];
            if !named.iter().any(|(j, _)| *j == i) {
                named.push((i, 1.0));
            }
        }
        let (also, weight) = also;
        for term in also {
            for phrase in self.matcher.find(term) {
                let i = self.phrase_entity[phrase];
                if !named.iter().any(|(j, _)| *j == i) {
                    named.push((i, weight));
                }
            }
        }
        let mut reached: Vec<Reached> = Vec::new();
        for (start, first) in named {
            let mut seen = vec![start];
            let mut frontier = vec![(start, vec![self.entities[start].id.clone()])];
            let mut weight = first;
            for hop in 0..=MAX_HOPS {
                let mut next = Vec::new();
                for (i, path) in frontier {
                    if hop < MAX_HOPS {
                        for (kind, to) in &self.down[i] {
                            if !seen.contains(to) {
                                seen.push(*to);
                                let mut longer = path.clone();
                                longer.push(kind.clone());
                                longer.push(self.entities[*to].id.clone());
                                next.push((*to, longer));
                            }
                        }
                    }
                    let id = &self.entities[i].id;
                    match reached.iter_mut().find(|r| &r.entity == id) {
                        Some(r) => {
                            if weight > r.best {
                                r.best = weight;
                                r.path = path;
                            }
                            r.weight += weight;
                        }
                        None => reached.push(Reached {
                            entity: id.clone(),
                            weight,
                            path,
                            best: weight,
                            depth: self.depth(i),
                        }),
                    }
                }
                frontier = next;
                weight *= HOP_WEIGHT;
            }
        }
        reached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Graph {
        let e = |id: &str, names: &[&str]| Entity {
            id: id.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        let r = |from: &str, kind: &str, to: &str| Relation {
            from: from.into(),
            kind: kind.into(),
            to: to.into(),
        };
        Graph::new(
            vec![
                e("product:cam", &["Cam C3", "摄像头", "camera"]),
                e("component:night", &["night vision", "夜视"]),
                e("issue:flicker", &["night flicker", "夜视闪烁"]),
                e("team:support", &["support"]),
            ],
            vec![
                r("product:cam", "has_component", "component:night"),
                r("component:night", "has_known_issue", "issue:flicker"),
                r("product:cam", "owned_by", "team:support"),
            ],
        )
    }

    #[test]
    fn a_named_product_reaches_its_known_issues_with_the_path() {
        let reached = graph().reach(&Prepared::new("摄像头晚上一直闪"), (&[], 0.0));
        let ids: Vec<&str> = reached.iter().map(|r| r.entity.as_str()).collect();
        assert_eq!(ids, ["product:cam", "component:night", "issue:flicker"]);
        assert_eq!(
            reached[2].path,
            [
                "product:cam",
                "has_component",
                "component:night",
                "has_known_issue",
                "issue:flicker"
            ]
        );
        assert!(reached[2].weight < reached[1].weight && reached[1].weight < 1.0);
        // Named by its symptom too: the issue adds both, and its path is the direct one.
        let reached = graph().reach(&Prepared::new("摄像头夜视闪烁"), (&[], 0.0));
        let issue = reached
            .iter()
            .find(|r| r.entity == "issue:flicker")
            .unwrap();
        assert!(issue.weight > 1.0, "{issue:?}");
        assert_eq!(issue.path, ["issue:flicker"]);
    }

    #[test]
    fn what_an_issue_is_about_includes_its_owners() {
        let names = graph().about(&["issue:flicker".to_string()]);
        assert!(names.contains(&"Cam C3".to_string()), "{names:?}");
        assert!(names.contains(&"夜视".to_string()), "{names:?}");
    }
}
