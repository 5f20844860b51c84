//! The first implementation of the scan (both streams written out, then matched by daachorse),
//! kept for tests: the one-pass scanner must find exactly what it found.

use daachorse::CharwiseDoubleArrayAhoCorasick;

use super::{Found, SensitiveWord, Via, WHOLE_WORD_UP_TO, fold, fold_word, sound_of, sound_word};
use crate::text::is_han;

pub(super) struct Reference {
    folded: Option<CharwiseDoubleArrayAhoCorasick<u32>>,
    sound: Option<CharwiseDoubleArrayAhoCorasick<u32>>,
    whole_word: Vec<bool>,
}

#[derive(Clone, Copy)]
struct Origin {
    start: usize,
    end: usize,
    gap_before: bool,
    han: bool,
}

struct Stream {
    text: String,
    offsets: Vec<u32>,
    origins: Vec<Origin>,
}

impl Stream {
    fn push(&mut self, piece: &str, origin: Origin) {
        self.offsets.push(self.text.len() as u32);
        self.origins.push(origin);
        self.text.push_str(piece);
    }

    fn owner(&self, at: usize) -> usize {
        match self.offsets.binary_search(&(at as u32)) {
            Ok(index) => index,
            Err(next) => next - 1,
        }
    }
}

impl Reference {
    pub fn new(words: &[SensitiveWord]) -> Reference {
        let mut folded_patterns = Vec::new();
        let mut sound_patterns = Vec::new();
        let mut whole_word = vec![false; words.len()];
        for (index, word) in words.iter().enumerate() {
            let folded = fold_word(&word.word);
            if folded.is_empty() {
                continue;
            }
            let latin = !folded.chars().any(is_han);
            whole_word[index] = latin && folded.chars().count() <= WHOLE_WORD_UP_TO;
            folded_patterns.push((folded.clone(), index as u32));
            if !latin
                && folded.chars().count() >= 2
                && folded.chars().all(is_han)
                && let Some(sound) = sound_word(&folded)
            {
                sound_patterns.push((sound, index as u32));
            }
        }
        let build = |patterns: Vec<(String, u32)>| {
            if patterns.is_empty() {
                return None;
            }
            let mut seen = std::collections::HashSet::new();
            let unique: Vec<(String, u32)> = patterns
                .into_iter()
                .filter(|(p, _)| seen.insert(p.clone()))
                .collect();
            Some(CharwiseDoubleArrayAhoCorasick::with_values(unique).unwrap())
        };
        Reference {
            folded: build(folded_patterns),
            sound: build(sound_patterns),
            whole_word,
        }
    }

    pub fn scan(&self, text: &str) -> Vec<Found> {
        let Some(folded_automaton) = &self.folded else {
            return Vec::new();
        };
        let new_stream = || Stream {
            text: String::new(),
            offsets: Vec::new(),
            origins: Vec::new(),
        };
        let (mut folded, mut sound) = (new_stream(), new_stream());
        let mut gap = true;
        let mut buffer = [0u8; 4];
        for (start, c) in text.char_indices() {
            let end = start + c.len_utf8();
            let symbol_letter = matches!(c, '@' | '$');
            if symbol_letter
                && (han_beside(text[..start].chars().rev()) || han_beside(text[end..].chars()))
            {
                gap = true;
                continue;
            }
            let mut produced = false;
            fold(c, |plain| {
                let origin = Origin {
                    start,
                    end,
                    gap_before: gap && !produced,
                    han: is_han(plain),
                };
                folded.push(super::unleet(plain).encode_utf8(&mut buffer), origin);
                match origin.han.then(|| sound_of(plain)).flatten() {
                    Some(syllable) => sound.push(syllable, origin),
                    None => {
                        let letter = if symbol_letter {
                            super::unleet(plain)
                        } else {
                            plain
                        };
                        sound.push(letter.encode_utf8(&mut buffer), origin);
                    }
                }
                produced = true;
            });
            gap = !produced;
        }
        let mut found = Vec::new();
        for m in folded_automaton.find_overlapping_iter(&folded.text) {
            let word = m.value() as usize;
            let (first, last) = (folded.owner(m.start()), folded.owner(m.end() - 1));
            if self.whole_word[word] && !stands_alone(&folded.origins, first, last) {
                continue;
            }
            found.push(Found {
                word,
                start: folded.origins[first].start,
                end: folded.origins[last].end,
                via: Via::Text,
            });
        }
        if let Some(sound_automaton) = &self.sound {
            for m in sound_automaton.find_overlapping_iter(&sound.text) {
                let (first, last) = (sound.owner(m.start()), sound.owner(m.end() - 1));
                let starts_clean = sound.offsets[first] as usize == m.start();
                let ends_clean = sound
                    .offsets
                    .get(last + 1)
                    .map_or(sound.text.len(), |&o| o as usize)
                    == m.end();
                if !starts_clean || !ends_clean || !stands_alone(&sound.origins, first, last) {
                    continue;
                }
                let (start, end) = (sound.origins[first].start, sound.origins[last].end);
                let word = m.value() as usize;
                if !found
                    .iter()
                    .any(|f| f.word == word && f.start == start && f.end == end)
                {
                    found.push(Found {
                        word,
                        start,
                        end,
                        via: Via::Sound,
                    });
                }
            }
        }
        found.sort_by_key(|f| (f.start, f.end, f.word));
        found
    }
}

fn han_beside(mut chars: impl Iterator<Item = char>) -> bool {
    chars.find(|c| !c.is_whitespace()).is_some_and(is_han)
}

fn stands_alone(origins: &[Origin], first: usize, last: usize) -> bool {
    let before_ok =
        first == 0 || origins[first].gap_before || origins[first].han || origins[first - 1].han;
    let after_ok = last + 1 >= origins.len()
        || origins[last + 1].gap_before
        || origins[last].han
        || origins[last + 1].han;
    before_ok && after_ok
}
