//! Sensitive words: finds an organisation's listed words in a message however they are
//! disguised — full-width letters, capitals, spaces or symbols between the letters,
//! Traditional characters, pinyin spellings and same-sounding characters, English leetspeak.
//!
//! The text is read as two streams, each matched by an Aho-Corasick automaton built once per
//! dictionary:
//! * the folded stream: letters, digits and Han characters only, NFKC-folded, lower-cased,
//!   Simplified, with leetspeak digits read as letters;
//! * the sound stream: every Han character replaced by its toneless pinyin, letters kept, so
//!   that `sha bi`, `shabi` and a homophone spelled with other characters meet the pinyin of a
//!   listed Chinese word.
//!
//! Both streams are made and matched in one pass over the text, character by character: what a
//! character of the Basic Multilingual Plane becomes in each stream is looked up in a table built
//! with the dictionary, and only the last few characters are remembered, enough to place a match.
//! Runs of ASCII letters, digits and separators (most of any text) go through a loop of their
//! own, and a Han character's whole syllable is one step of the sound automaton.
//!
//! Every match is reported with its byte range in the original text, for highlighting.

mod automaton;
#[cfg(test)]
mod reference;

use std::sync::OnceLock;

use pinyin::ToPinyin;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::text::is_han;
use automaton::{Automaton, Entry, NO_SYLLABLE, ROOT, Rows, Stepper};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Shown to a supervisor when a customer writes it; an employee is not stopped.
    Flag,
    /// An employee must confirm before a reply with it is sent.
    Warn,
    /// A reply with it is refused.
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensitiveWord {
    pub word: String,
    pub category: String,
    pub severity: Severity,
}

/// How a match was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// The letters or characters themselves (after folding).
    Text,
    /// The sound: pinyin spelling or same-sounding characters.
    Sound,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Found {
    /// Index of the word in the dictionary.
    pub word: usize,
    /// Byte range in the scanned text.
    pub start: usize,
    pub end: usize,
    pub via: Via,
}

/// Latin words this short must stand alone (`ass` is not in `class`); longer ones are found
/// inside other words too.
const WHOLE_WORD_UP_TO: usize = 4;

pub struct Matcher {
    words: Vec<SensitiveWord>,
    folded: Option<Automaton>,
    sound: Option<Automaton>,
    /// Per word: whether it must start and end at a word boundary.
    whole_word: Vec<bool>,
    /// What each character of the Basic Multilingual Plane becomes in the two streams.
    chars: Vec<CharInfo>,
    /// The sound-stream symbols of the characters in `chars` that have more than one (Han
    /// characters' syllables): per syllable, its number, then its run of symbols.
    pieces: Vec<u32>,
    /// Characters of the streams remembered while scanning: a power of two, more than the longest
    /// pattern.
    window: usize,
}

/// One character of the original, as the streams see it.
#[derive(Clone, Copy)]
struct CharInfo {
    /// Its symbol in the folded stream.
    folded: u32,
    /// Its symbols in the sound stream: `pieces[piece + 1..piece + 1 + len]`, after its syllable's
    /// number (`pieces[piece]`); or the symbol itself when there is one.
    piece: u16,
    len: u8,
    flags: u8,
}

/// A separator: nothing in either stream.
const SKIP: u8 = 1;
/// Not in the table (folds to more than one character): folded as it comes.
const SLOW: u8 = 2;
/// Folds to a Han character.
const HAN: u8 = 4;
/// `@` or `$`: a letter unless beside Han characters.
const SYMBOL_LETTER: u8 = 8;

impl CharInfo {
    const SLOW: CharInfo = CharInfo {
        folded: 0,
        piece: 0,
        len: 0,
        flags: SLOW,
    };
}

/// Traditional to Simplified for single Han characters, from OpenCC's tables, built once.
fn simplified(c: char) -> char {
    const FIRST: u32 = 0x3400;
    const LAST: u32 = 0x9FFF;
    static TABLE: OnceLock<Vec<char>> = OnceLock::new();
    let code = c as u32;
    if !(FIRST..=LAST).contains(&code) {
        return c;
    }
    let table = TABLE.get_or_init(|| {
        let chars: String = (FIRST..=LAST).filter_map(char::from_u32).collect();
        let converted = match crate::text::opencc() {
            // OpenCC's character table maps one character to one, so converting every character
            // separated by a newline keeps them aligned.
            Some(t2s) => {
                let spaced: String = chars.chars().flat_map(|c| [c, '\n']).collect();
                t2s.convert(&spaced)
                    .split('\n')
                    .map(|s| {
                        let mut it = s.chars();
                        match (it.next(), it.next()) {
                            (Some(one), None) => one,
                            _ => '\0',
                        }
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        if converted.len() >= chars.chars().count() {
            chars
                .chars()
                .zip(converted)
                .map(|(from, to)| if to == '\0' { from } else { to })
                .collect()
        } else {
            chars.chars().collect()
        }
    });
    table.get((code - FIRST) as usize).copied().unwrap_or(c)
}

/// Leetspeak digits and symbols read as the letters they stand for; `l`, `i`, `1` and `|` are
/// one letter, so `k1ll` and `kiii` meet `kill`.
fn unleet(c: char) -> char {
    match c {
        '0' => 'o',
        '1' | 'l' | '|' | '!' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        other => other,
    }
}

/// The plain folded form of one character of the original, nothing for separators: ASCII letters
/// and digits lower-cased (`@` and `$` kept, they may be leetspeak), Han characters Simplified,
/// compatibility forms (full-width, circled) decomposed.
fn fold(c: char, mut out: impl FnMut(char)) {
    if c.is_ascii() {
        if c.is_ascii_alphanumeric() || matches!(c, '@' | '$') {
            out(c.to_ascii_lowercase());
        }
        return;
    }
    if is_han(c) {
        out(simplified(c));
        return;
    }
    unicode_normalization::char::decompose_compatible(c, |d| {
        if d.is_ascii() {
            if d.is_ascii_alphanumeric() {
                out(d.to_ascii_lowercase());
            }
        } else if is_han(d) {
            out(simplified(d));
        } else if d.is_alphanumeric() {
            for lower in d.to_lowercase() {
                out(lower);
            }
        }
    });
}

/// Folds a dictionary word the way text is folded, leetspeak included.
fn fold_word(word: &str) -> String {
    let mut out = String::new();
    for c in word.chars() {
        fold(c, |f| out.push(unleet(f)));
    }
    out
}

/// Toneless pinyin of a Simplified character, if it has one.
fn sound_of(c: char) -> Option<&'static str> {
    c.to_pinyin().map(|p| p.plain())
}

/// The pinyin of a folded Chinese word, or `None` when one of its characters has none.
fn sound_word(folded: &str) -> Option<String> {
    let mut out = String::new();
    for c in folded.chars() {
        out.push_str(sound_of(c)?);
    }
    Some(out)
}

/// The sound-stream characters of a folded character: its pinyin when it is a Han character with
/// one, else itself (`@` and `$` as the letters they stand for).
fn sound_piece(plain: char, symbol_letter: bool, mut out: impl FnMut(char)) {
    match is_han(plain).then(|| sound_of(plain)).flatten() {
        Some(syllable) => syllable.chars().for_each(out),
        None if symbol_letter => out(unleet(plain)),
        None => out(plain),
    }
}

/// The character table under construction.
struct Tables<'a> {
    folded: Option<&'a Automaton>,
    sound: Option<&'a Automaton>,
    /// How many sound patterns each syllable is in.
    syllable_uses: &'a std::collections::HashMap<&'static str, usize>,
    pieces: Vec<u32>,
    /// Where each sound run already stored starts in `pieces`.
    known: std::collections::HashMap<Vec<u32>, usize>,
    /// The runs (syllables), numbered in order, and how many sound patterns each is in.
    syllables: Vec<Vec<u32>>,
    uses: Vec<usize>,
}

impl Tables<'_> {
    /// What `c` becomes in the streams.
    fn char_info(&mut self, c: char) -> CharInfo {
        let mut plains = Vec::new();
        fold(c, |plain| plains.push(plain));
        let symbol_letter = matches!(c, '@' | '$');
        let [plain] = plains[..] else {
            return if plains.is_empty() {
                CharInfo {
                    flags: SKIP,
                    ..CharInfo::SLOW
                }
            } else {
                CharInfo::SLOW
            };
        };
        let mut piece = Vec::new();
        sound_piece(plain, symbol_letter, |s| {
            piece.push(self.sound.map_or(0, |a| a.symbol(s)))
        });
        // One symbol is kept in place of where a run starts.
        let len = piece.len();
        let at = match piece[..] {
            [one] => u16::try_from(one),
            _ => {
                let uses = sound_of(plain).and_then(|s| self.syllable_uses.get(s));
                let start = *self.known.entry(piece).or_insert_with_key(|piece| {
                    self.pieces.push(self.syllables.len() as u32);
                    self.syllables.push(piece.clone());
                    self.uses.push(uses.copied().unwrap_or(0));
                    self.pieces.extend_from_slice(piece);
                    self.pieces.len() - len - 1
                });
                u16::try_from(start)
            }
        };
        let (Ok(at), Ok(len)) = (at, u8::try_from(len)) else {
            return CharInfo::SLOW;
        };
        let mut flags = 0;
        if is_han(plain) {
            flags |= HAN;
        }
        if symbol_letter {
            flags |= SYMBOL_LETTER;
        }
        CharInfo {
            folded: self.folded.map_or(0, |a| a.symbol(unleet(plain))),
            piece: at,
            len,
            flags,
        }
    }

    /// The pieces and the syllables, renumbered the commonest in the patterns first: the
    /// busiest corner of the sound automaton's table of syllable pairs then shares cache lines.
    fn into_pieces_and_syllables(self) -> (Vec<u32>, Vec<Vec<u32>>) {
        let mut order: Vec<usize> = (0..self.syllables.len()).collect();
        order.sort_by_key(|&old| std::cmp::Reverse(self.uses[old]));
        let mut renumbered = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            renumbered[old] = new as u32;
        }
        let mut pieces = self.pieces;
        for start in self.known.into_values() {
            pieces[start] = renumbered[pieces[start] as usize];
        }
        let syllables = order
            .iter()
            .map(|&old| self.syllables[old].clone())
            .collect();
        (pieces, syllables)
    }
}

impl Matcher {
    pub fn new(words: Vec<SensitiveWord>) -> AppResult<Matcher> {
        let mut folded_patterns: Vec<(Vec<char>, u32)> = Vec::new();
        let mut sound_patterns: Vec<(Vec<char>, u32)> = Vec::new();
        let mut whole_word = vec![false; words.len()];
        let mut seen_folded = std::collections::HashSet::new();
        let mut seen_sound = std::collections::HashSet::new();
        let mut syllable_uses = std::collections::HashMap::new();
        for (index, word) in words.iter().enumerate() {
            let folded = fold_word(&word.word);
            if folded.is_empty() {
                continue;
            }
            let latin = !folded.chars().any(is_han);
            let length = folded.chars().count();
            whole_word[index] = latin && length <= WHOLE_WORD_UP_TO;
            // One Han character sounds like too many others to match by sound.
            if !latin
                && length >= 2
                && folded.chars().all(is_han)
                && let Some(sound) = sound_word(&folded)
                // The same form twice (two spellings of one word) is one pattern.
                && seen_sound.insert(sound.clone())
            {
                sound_patterns.push((sound.chars().collect(), index as u32));
                for syllable in folded.chars().filter_map(sound_of) {
                    *syllable_uses.entry(syllable).or_default() += 1;
                }
            }
            if seen_folded.insert(folded.clone()) {
                folded_patterns.push((folded.chars().collect(), index as u32));
            }
        }
        let total: usize = [&folded_patterns, &sound_patterns]
            .iter()
            .flat_map(|list| list.iter().map(|(p, _)| p.len()))
            .sum();
        // States are numbered in 32 bits.
        if total >= u32::MAX as usize {
            return Err(AppError::internal("sensitive word list too long"));
        }
        let folded = (!folded_patterns.is_empty()).then(|| Automaton::new(&folded_patterns));
        let sound = (!sound_patterns.is_empty()).then(|| Automaton::new(&sound_patterns));
        let longest = [&folded, &sound]
            .iter()
            .filter_map(|a| a.as_ref().map(Automaton::max_len))
            .max()
            .unwrap_or(0);
        let mut tables = Tables {
            folded: folded.as_ref(),
            sound: sound.as_ref(),
            syllable_uses: &syllable_uses,
            pieces: Vec::new(),
            known: std::collections::HashMap::new(),
            syllables: Vec::new(),
            uses: Vec::new(),
        };
        let chars = (0..=0xFFFF)
            .map(|code| char::from_u32(code).map_or(CharInfo::SLOW, |c| tables.char_info(c)))
            .collect();
        let (pieces, syllables) = tables.into_pieces_and_syllables();
        let mut sound = sound;
        if let Some(sound) = &mut sound {
            sound.set_syllables(&syllables);
        }
        Ok(Matcher {
            words,
            folded,
            sound,
            whole_word,
            chars,
            pieces,
            window: (longest + 2).next_power_of_two(),
        })
    }

    fn folded_symbol(&self, c: char) -> u32 {
        self.folded.as_ref().map_or(0, |a| a.symbol(c))
    }

    fn sound_symbol(&self, c: char) -> u32 {
        self.sound.as_ref().map_or(0, |a| a.symbol(c))
    }

    pub fn words(&self) -> &[SensitiveWord] {
        &self.words
    }

    pub fn is_empty(&self) -> bool {
        self.folded.is_none()
    }

    /// Bytes the automata and tables hold.
    pub fn heap_bytes(&self) -> usize {
        [&self.folded, &self.sound]
            .iter()
            .filter_map(|a| a.as_ref().map(Automaton::heap_bytes))
            .sum::<usize>()
            + self.chars.len() * std::mem::size_of::<CharInfo>()
            + self.pieces.len() * 4
    }

    /// Every listed word in `text`, in order of position; a word found both by its letters and
    /// by its sound at the same place is reported once.
    pub fn scan(&self, text: &str) -> Vec<Found> {
        let Some(folded) = &self.folded else {
            return Vec::new();
        };
        let none = None::<Stepper<u16>>;
        match (folded.rows(), self.sound.as_ref()) {
            (Rows::Narrow(f), None) => self.scan_with(text, folded.stepper(f, &[]), none),
            (Rows::Wide(f), None) => self.scan_with(text, folded.stepper(f, &[]), none),
            (f, Some(a)) => match (f, a.rows()) {
                (Rows::Narrow(f), Rows::Narrow(s)) => self.scan_with(
                    text,
                    folded.stepper(f, &[]),
                    Some(a.stepper(s, a.pairs().narrow())),
                ),
                (Rows::Narrow(f), Rows::Wide(s)) => self.scan_with(
                    text,
                    folded.stepper(f, &[]),
                    Some(a.stepper(s, a.pairs().wide())),
                ),
                (Rows::Wide(f), Rows::Narrow(s)) => self.scan_with(
                    text,
                    folded.stepper(f, &[]),
                    Some(a.stepper(s, a.pairs().narrow())),
                ),
                (Rows::Wide(f), Rows::Wide(s)) => self.scan_with(
                    text,
                    folded.stepper(f, &[]),
                    Some(a.stepper(s, a.pairs().wide())),
                ),
            },
        }
    }

    /// `scan`, with the automata's row entry types known.
    fn scan_with<F: Entry, S: Entry>(
        &self,
        text: &str,
        folded: Stepper<F>,
        sound: Option<Stepper<S>>,
    ) -> Vec<Found> {
        let mut window = vec![Element::default(); self.window];
        let mut finds = Finds {
            whole_word: &self.whole_word,
            found: Vec::new(),
            pending: Vec::new(),
        };
        let streams = Streams {
            text,
            folded,
            sound,
            mask: self.window - 1,
            ascii: &self.chars[..128],
        };
        // The hot state lives in locals (registers), not in a struct behind a reference: what
        // finds need is passed to them by value.
        let mut p = Progress {
            folded: ROOT,
            sound: ROOT,
            count: 0,
            letters: 0,
            gap: true,
            pending: false,
        };
        let mut previous_syllable = NO_SYLLABLE;
        let mut plains: Vec<char> = Vec::new();
        let mut slow_piece: Vec<u32> = Vec::new();

        // The sound automaton's step on one sound-stream character; how many it made.
        macro_rules! sound_one {
            ($symbol:expr) => {{
                if let Some(sound) = sound {
                    p.sound = sound.step(p.sound, $symbol);
                }
                1
            }};
        }
        // The sound automaton's step on a run of them (a Han character's syllable, numbered, or
        // `NO_SYLLABLE`); how many it made.
        macro_rules! sound_run {
            ($syllable:expr, $symbols:expr) => {{
                match sound {
                    None => 1,
                    Some(sound) => {
                        let symbols: &[u32] = $symbols;
                        let syllable: u32 = $syllable;
                        // The last syllable is a guess at where the automaton is: checked.
                        p.sound =
                            sound.step_syllable(p.sound, previous_syllable, syllable, symbols);
                        if syllable != NO_SYLLABLE {
                            previous_syllable = syllable;
                        }
                        symbols.len()
                    }
                }
            }};
        }
        // One stream character: its folded symbol, the sound automaton's step on it (one of the
        // two above), where it came from.
        macro_rules! push {
            ($folded_step:expr, $sound_step:expr, $start:expr, $han:expr, $gap_before:expr) => {{
                let (han, gap_before): (bool, bool) = ($han, $gap_before);
                if p.pending {
                    finds.settle(gap_before || han);
                    p.pending = false;
                }
                p.folded = $folded_step;
                let made: usize = $sound_step;
                p.letters += made;
                window[p.count & streams.mask] = Element {
                    start: $start,
                    traits: (made as u32) << 2 | (han as u32) << 1 | gap_before as u32,
                };
                streams.check(&mut p, &window, &mut finds);
                p.count += 1;
            }};
        }

        let bytes = text.as_bytes();
        let mut end = 0;
        while end < bytes.len() {
            if bytes[end] < 0x80 {
                // Up to the next character that is not ASCII, or `@` or `$`, whose reading
                // depends on the characters around them.
                (p, end) = streams.ascii_run(p, end, &mut window, &mut finds);
                if end == bytes.len() {
                    break;
                }
            }
            // UTF-8 decoded by hand: the text is valid, and the table wants only the code.
            let start = end;
            let lead = bytes[start] as u32;
            let code = if lead < 0x80 {
                end += 1;
                lead
            } else if lead < 0xE0 {
                end += 2;
                (lead & 0x1F) << 6 | (bytes[start + 1] as u32 & 0x3F)
            } else if lead < 0xF0 {
                end += 3;
                (lead & 0x0F) << 12
                    | (bytes[start + 1] as u32 & 0x3F) << 6
                    | (bytes[start + 2] as u32 & 0x3F)
            } else {
                end += 4;
                // Beyond the table: its value does not matter.
                u32::MAX
            };
            let info = self
                .chars
                .get(code as usize)
                .copied()
                .unwrap_or(CharInfo::SLOW);
            if info.flags == HAN {
                // A Han character's folded symbol is not among the rows' (or is 0).
                let step = folded.step_beyond_rows(p.folded, info.folded);
                if info.len == 1 {
                    push!(step, sound_one!(info.piece as u32), start, true, p.gap);
                } else {
                    let from = info.piece as usize;
                    push!(
                        step,
                        sound_run!(
                            self.pieces[from],
                            &self.pieces[from + 1..from + 1 + info.len as usize]
                        ),
                        start,
                        true,
                        p.gap
                    );
                }
                p.gap = false;
            } else if info.flags == 0 {
                push!(
                    folded.step(p.folded, info.folded),
                    sound_one!(info.piece as u32),
                    start,
                    false,
                    p.gap
                );
                p.gap = false;
            } else if info.flags & SKIP != 0 {
                p.gap = true;
            } else if info.flags & SYMBOL_LETTER != 0 {
                // `@` and `$` are leetspeak letters (`@$$`, `$h1t`) except beside Chinese, where
                // they are symbols between the characters of a disguised word (`私@下`).
                if han_beside(text[..start].chars().rev()) || han_beside(text[end..].chars()) {
                    p.gap = true;
                } else {
                    push!(
                        folded.step(p.folded, info.folded),
                        sound_one!(info.piece as u32),
                        start,
                        false,
                        p.gap
                    );
                    p.gap = false;
                }
            } else {
                plains.clear();
                if let Some(c) = text[start..end].chars().next() {
                    fold(c, |plain| plains.push(plain));
                }
                for (index, &plain) in plains.iter().enumerate() {
                    slow_piece.clear();
                    sound_piece(plain, false, |s| slow_piece.push(self.sound_symbol(s)));
                    push!(
                        folded.step(p.folded, self.folded_symbol(unleet(plain))),
                        sound_run!(NO_SYLLABLE, &slow_piece),
                        start,
                        is_han(plain),
                        p.gap && index == 0
                    );
                }
                p.gap = plains.is_empty();
            }
        }
        finds.finish()
    }
}

/// What a scan carries from one stream character to the next.
#[derive(Clone, Copy)]
struct Progress {
    /// The automata's states.
    folded: u32,
    sound: u32,
    /// Stream characters so far, and sound-stream characters.
    count: usize,
    letters: usize,
    /// Whether something that is not a letter came since the last stream character.
    gap: bool,
    /// Whether finds wait for the next stream character.
    pending: bool,
}

/// What a scan reads: the text, the automata, the window's size, the ASCII part of the table.
struct Streams<'a, F, S> {
    text: &'a str,
    folded: Stepper<'a, F>,
    sound: Option<Stepper<'a, S>>,
    mask: usize,
    ascii: &'a [CharInfo],
}

impl<F: Entry, S: Entry> Streams<'_, F, S> {
    /// The finds ending at the stream character just pushed, if any.
    #[inline(always)]
    fn check(&self, p: &mut Progress, window: &[Element], finds: &mut Finds) {
        let folded_match = self.folded.matches(p.folded);
        // Matches ending inside a syllable are not whole syllables: only the last letter's
        // state counts.
        let sound_match = self.sound.is_some_and(|sound| sound.matches(p.sound));
        if folded_match || sound_match {
            let at = Place {
                text: self.text,
                window,
                mask: self.mask,
                last: p.count,
            };
            if folded_match {
                p.pending |= finds.text_matches(self.folded.automaton(), p.folded, at);
            }
            if let Some(sound) = self.sound
                && sound_match
            {
                p.pending |= finds.sound_matches(sound.automaton(), p.sound, at, p.letters);
            }
        }
    }

    /// Letters, digits and separators from `end` on, up to the first byte that is not one of
    /// them: the commonest characters, in a loop of their own. Where it stopped.
    #[inline(never)]
    fn ascii_run(
        &self,
        progress: Progress,
        mut end: usize,
        window: &mut [Element],
        finds: &mut Finds,
    ) -> (Progress, usize) {
        let mut p = progress;
        let bytes = self.text.as_bytes();
        while let Some(&byte) = bytes.get(end) {
            let info = self.ascii[byte as usize & 0x7F];
            if byte >= 0x80 || info.flags & !SKIP != 0 {
                break;
            }
            if info.flags & SKIP != 0 {
                p.gap = true;
                end += 1;
                continue;
            }
            if p.pending {
                finds.settle(p.gap);
                p.pending = false;
            }
            p.folded = self.folded.step(p.folded, info.folded);
            if let Some(sound) = self.sound {
                p.sound = sound.step(p.sound, info.piece as u32);
            }
            p.letters += 1;
            window[p.count & self.mask] = Element {
                start: end,
                traits: 1 << 2 | p.gap as u32,
            };
            self.check(&mut p, window, finds);
            p.count += 1;
            p.gap = false;
            end += 1;
        }
        (p, end)
    }
}

/// One character of the streams: where it came from in the original text (its first byte: the
/// character there tells its end), whether something that is not a letter (or the start of the
/// text) came right before it, whether it is Han, and how many sound-stream characters it made.
#[derive(Clone, Copy, Default)]
struct Element {
    start: usize,
    /// `letters << 2 | han << 1 | gap_before`.
    traits: u32,
}

impl Element {
    fn gap_before(self) -> bool {
        self.traits & 1 != 0
    }

    fn han(self) -> bool {
        self.traits & 2 != 0
    }

    fn letters(self) -> usize {
        (self.traits >> 2) as usize
    }

    /// Where the original character ends.
    fn end(self, text: &str) -> usize {
        self.start + text[self.start..].chars().next().map_or(0, char::len_utf8)
    }
}

/// What a scan has found so far.
struct Finds<'m> {
    whole_word: &'m [bool],
    found: Vec<Found>,
    /// Finds that must stand alone, waiting for the next stream character to tell.
    pending: Vec<Found>,
}

/// Where a match ends: the text, the last stream characters, and the index of the last one.
#[derive(Clone, Copy)]
struct Place<'a> {
    text: &'a str,
    window: &'a [Element],
    mask: usize,
    last: usize,
}

impl Place<'_> {
    fn at(&self, index: usize) -> Element {
        self.window[index & self.mask]
    }

    /// Whether stream character `first` is not glued to a letter before it: Han characters
    /// border anything, letters need a separator (or the text's edge).
    fn apart_before(&self, first: usize) -> bool {
        let element = self.at(first);
        first == 0 || element.gap_before() || element.han() || self.at(first - 1).han()
    }

    fn found(&self, word: u32, first: usize, via: Via) -> Found {
        Found {
            word: word as usize,
            start: self.at(first).start,
            end: self.at(self.last).end(self.text),
            via,
        }
    }
}

impl Finds<'_> {
    /// Pending finds, now that the character after them is known.
    #[cold]
    fn settle(&mut self, apart: bool) {
        for found in std::mem::take(&mut self.pending) {
            if apart {
                self.found.push(found);
            }
        }
    }

    /// A find that must stand alone and does before it: kept if the character after it is also
    /// apart, which the next character tells unless this one is Han.
    fn keep_if_alone_after(&mut self, found: Found, at: Place) {
        if at.at(at.last).han() {
            self.found.push(found);
        } else {
            self.pending.push(found);
        }
    }

    /// The folded stream's matches ending at `at`; whether some wait.
    #[cold]
    #[inline(never)]
    fn text_matches(&mut self, automaton: &Automaton, state: u32, at: Place) -> bool {
        for pattern in automaton.outputs(state) {
            let first = at.last + 1 - pattern.len as usize;
            let found = at.found(pattern.word, first, Via::Text);
            if !self.whole_word[found.word] {
                self.found.push(found);
            } else if at.apart_before(first) {
                self.keep_if_alone_after(found, at);
            }
        }
        !self.pending.is_empty()
    }

    /// The sound stream's matches ending at `at`, whose sound ends at sound-stream character
    /// `letters`; whether some wait.
    #[cold]
    #[inline(never)]
    fn sound_matches(
        &mut self,
        automaton: &Automaton,
        state: u32,
        at: Place,
        letters: usize,
    ) -> bool {
        for pattern in automaton.outputs(state) {
            // Whole syllables only: the match starts where a character's sound starts, and
            // letters spelling it stand apart from other letters.
            let target = letters - pattern.len as usize;
            let mut first = at.last;
            let mut first_starts = letters - at.at(first).letters();
            while first_starts > target {
                first -= 1;
                first_starts -= at.at(first).letters();
            }
            if first_starts == target && at.apart_before(first) {
                self.keep_if_alone_after(at.found(pattern.word, first, Via::Sound), at);
            }
        }
        !self.pending.is_empty()
    }

    /// The finds in order; one found by its sound where it was found by its letters (or by its
    /// sound already) is left out.
    fn finish(mut self) -> Vec<Found> {
        self.settle(true);
        let mut found = self.found;
        found.sort_by_key(|f| (f.start, f.end, f.word, f.via == Via::Sound));
        let mut kept = 0;
        for index in 0..found.len() {
            let f = &found[index];
            let repeat = kept > 0 && {
                let last = &found[kept - 1];
                (last.start, last.end, last.word) == (f.start, f.end, f.word)
            };
            if f.via == Via::Text || !repeat {
                found.swap(kept, index);
                kept += 1;
            }
        }
        found.truncate(kept);
        found
    }
}

/// Whether the nearest character that is not a space, going one way, is a Han character.
fn han_beside(mut chars: impl Iterator<Item = char>) -> bool {
    chars.find(|c| !c.is_whitespace()).is_some_and(is_han)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn word(w: &str, severity: Severity) -> SensitiveWord {
        SensitiveWord {
            word: w.into(),
            category: "test".into(),
            severity,
        }
    }

    fn words_found(matcher: &Matcher, text: &str) -> Vec<String> {
        matcher
            .scan(text)
            .iter()
            .map(|f| matcher.words()[f.word].word.clone())
            .collect()
    }

    #[test]
    fn disguised_words_are_found_with_their_place_in_the_text() {
        let matcher = Matcher::new(vec![
            word("傻逼", Severity::Block),
            word("骗子", Severity::Warn),
            word("idiot", Severity::Block),
            word("ass", Severity::Warn),
        ])
        .unwrap();
        let text = "你这个 傻 逼";
        let found = matcher.scan(text);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].start..found[0].end], "傻 逼");
        assert_eq!(words_found(&matcher, "你們都是騙子"), vec!["骗子"]);
        assert_eq!(words_found(&matcher, "sha bi"), vec!["傻逼"]);
        assert_eq!(words_found(&matcher, "你个沙比"), vec!["傻逼"]);
        assert_eq!(words_found(&matcher, "ＩＤＩＯＴ"), vec!["idiot"]);
        assert_eq!(words_found(&matcher, "you 1d10t"), vec!["idiot"]);
        assert_eq!(words_found(&matcher, "i.d.i.o.t!"), vec!["idiot"]);
        assert_eq!(words_found(&matcher, "kick @$$"), vec!["ass"]);
        assert!(words_found(&matcher, "first class passenger").is_empty());
        assert!(words_found(&matcher, "assistance please").is_empty());
    }

    fn dictionary() -> Vec<SensitiveWord> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sensitive/words.tsv");
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| {
                let columns: Vec<&str> = line.split('\t').collect();
                SensitiveWord {
                    word: columns[0].into(),
                    category: columns[1].into(),
                    severity: match columns[2] {
                        "block" => Severity::Block,
                        "warn" => Severity::Warn,
                        _ => Severity::Flag,
                    },
                }
            })
            .collect()
    }

    fn full_width(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
                ' ' => '\u{3000}',
                other => other,
            })
            .collect()
    }

    fn leet(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                'a' => '4',
                'e' => '3',
                'i' => '1',
                'o' => '0',
                's' => '$',
                't' => '7',
                other => other,
            })
            .collect()
    }

    fn between(text: &str, separator: &str) -> String {
        text.chars()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(separator)
    }

    fn alternate_case(text: &str) -> String {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    /// Every disguise of every listed word, inside a sentence, as a customer or an employee
    /// would write it.
    fn variants(word: &str) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("as listed", word.to_string()),
            ("spaces", between(word, " ")),
            ("symbols", between(word, "*")),
            ("dots and dashes", between(word, ".-")),
            ("full width", full_width(word)),
            ("full width, spaced", full_width(&between(word, " "))),
        ];
        if word.chars().any(is_han) {
            let s2t =
                ferrous_opencc::OpenCC::from_config(ferrous_opencc::config::BuiltinConfig::S2t)
                    .unwrap();
            let traditional = s2t.convert(word);
            out.push(("traditional", traditional.clone()));
            out.push(("traditional, symbols", between(&traditional, "@")));
            let syllables: Vec<&str> = word.chars().filter_map(sound_of).collect();
            out.push(("pinyin", syllables.join("")));
            out.push(("pinyin, spaced", syllables.join(" ")));
            out.push(("pinyin, capitals", alternate_case(&syllables.join(""))));
            out.push(("pinyin, full width", full_width(&syllables.join(" "))));
        } else {
            out.push(("capitals", word.to_uppercase()));
            out.push(("mixed case", alternate_case(word)));
            out.push(("leetspeak", leet(word)));
            out.push(("leetspeak, spaced", between(&leet(word), " ")));
            out.push(("mixed case, symbols", between(&alternate_case(word), "_")));
        }
        out
    }

    #[test]
    fn every_disguise_of_every_listed_word_is_caught() {
        let words = dictionary();
        let matcher = Matcher::new(words.clone()).unwrap();
        let mut cases = 0;
        let mut missed = Vec::new();
        for (index, listed) in words.iter().enumerate() {
            for (kind, variant) in variants(&listed.word) {
                for text in [
                    variant.clone(),
                    format!("你好，{variant}，请回复"),
                    format!("hello, {variant} - reply please"),
                ] {
                    cases += 1;
                    if !matcher.scan(&text).iter().any(|f| f.word == index) {
                        missed.push(format!("{} ({kind}): {text}", listed.word));
                    }
                }
            }
        }
        println!(
            "sensitive-word variant suite: {cases} cases, {} missed",
            missed.len()
        );
        assert!(missed.is_empty(), "missed:\n{}", missed.join("\n"));
    }

    #[test]
    fn ordinary_customer_service_text_raises_almost_no_false_alarms() {
        let matcher = Matcher::new(dictionary()).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/knowledge");
        let mut texts = Vec::new();
        for lang in ["zh", "en"] {
            let articles =
                std::fs::read_to_string(dir.join(format!("articles.{lang}.jsonl"))).unwrap();
            for line in articles.lines() {
                let article: serde_json::Value = serde_json::from_str(line).unwrap();
                texts.push(format!(
                    "{} {}",
                    article["title"].as_str().unwrap(),
                    article["body"].as_str().unwrap()
                ));
            }
            let questions =
                std::fs::read_to_string(dir.join(format!("questions.{lang}.tsv"))).unwrap();
            texts.extend(
                questions
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split('\t').nth(3))
                    .map(String::from),
            );
        }
        let alarms: Vec<String> = texts
            .iter()
            .filter_map(|text| {
                let found = matcher.scan(text);
                // A listed word written plainly is a true find, not a false alarm.
                let lower = text.to_lowercase();
                let false_alarms: Vec<&Found> = found
                    .iter()
                    .filter(|f| !lower.contains(&matcher.words()[f.word].word.to_lowercase()))
                    .collect();
                (!false_alarms.is_empty()).then(|| {
                    let f = false_alarms[0];
                    format!(
                        "{} in {:?}",
                        matcher.words()[f.word].word,
                        &text[f.start..f.end]
                    )
                })
            })
            .collect();
        let rate = alarms.len() as f64 / texts.len() as f64;
        println!(
            "sensitive-word false alarms: {} of {} benign texts ({:.2}%)",
            alarms.len(),
            texts.len(),
            rate * 100.0
        );
        for alarm in &alarms {
            println!("  {alarm}");
        }
        assert!(rate <= 0.005, "{alarms:?}");
    }

    /// The bundled list and, up to 10,000 words, Chinese words made of characters from the
    /// knowledge articles and English words cut from them: many finds, to compare scanners on.
    fn large_dictionary() -> Vec<SensitiveWord> {
        use rand::{Rng, SeedableRng};
        let mut words = dictionary();
        let corpus = knowledge_texts().join(" ");
        let han: Vec<char> = corpus.chars().filter(|&c| is_han(c)).collect();
        let latin: Vec<&str> = corpus
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| w.len() >= 3)
            .collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        while words.len() < 10_000 {
            let text: String = match rng.gen_range(0..3) {
                0 => (0..rng.gen_range(1..=4))
                    .map(|_| han[rng.gen_range(0..han.len())])
                    .collect(),
                1 => latin[rng.gen_range(0..latin.len())].to_string(),
                _ => (0..rng.gen_range(2..=6))
                    .map(|_| rng.gen_range(b'a'..=b'z') as char)
                    .collect(),
            };
            words.push(word(&text, Severity::Flag));
        }
        words
    }

    fn knowledge_texts() -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/knowledge");
        let mut texts = Vec::new();
        for lang in ["zh", "en"] {
            for name in [
                format!("articles.{lang}.jsonl"),
                format!("questions.{lang}.tsv"),
            ] {
                let content = std::fs::read_to_string(dir.join(name)).unwrap();
                texts.extend(content.lines().map(String::from));
            }
        }
        texts
    }

    #[test]
    fn one_pass_scan_finds_what_the_two_stream_scan_found() {
        for words in [dictionary(), large_dictionary()] {
            let matcher = Matcher::new(words.clone()).unwrap();
            let reference = reference::Reference::new(&words);
            let mut texts = knowledge_texts();
            for listed in words.iter().take(60) {
                for (_, variant) in variants(&listed.word) {
                    texts.push(format!("你好，{variant}，请回复"));
                    texts.push(format!("hello, {variant}@$ - {variant}reply"));
                }
            }
            let mut finds = 0;
            for text in &texts {
                let expected = reference.scan(text);
                finds += expected.len();
                assert_eq!(matcher.scan(text), expected, "{text}");
            }
            println!("{} texts, {finds} finds, all alike", texts.len());
        }
    }

    /// Chinese words that sound alike and begin alike, and a few English ones: the sound
    /// automaton often deep in a word, where a syllable's step is not in the table of pairs.
    fn homophones() -> Vec<SensitiveWord> {
        let chars: Vec<char> = HOMOPHONE_CHARS.chars().collect();
        let mut words = Vec::new();
        for (i, &a) in chars.iter().enumerate() {
            for (j, &b) in chars.iter().enumerate() {
                if (i * 7 + j * 3) % 4 == 0 {
                    words.push(word(&format!("{a}{b}"), Severity::Flag));
                }
                if (i + j) % 5 == 0 {
                    let c = chars[(i * j + 1) % chars.len()];
                    words.push(word(&format!("{a}{b}{c}"), Severity::Warn));
                }
            }
        }
        for english in ["idiot", "ass", "shit", "scam"] {
            words.push(word(english, Severity::Block));
        }
        words
    }

    const HOMOPHONE_CHARS: &str = "是事市时十师西安先仙现傻沙杀逼比必骗片子字";

    /// Every way the sound automaton takes a Han character's syllable in one step (the table of
    /// pairs, the syllables continuing the state's path, its failure link's) lands where spelling
    /// the syllable letter by letter does, from every state.
    #[test]
    fn a_syllable_in_one_step_lands_where_its_letters_do() {
        for words in [dictionary(), homophones()] {
            let matcher = Matcher::new(words).unwrap();
            let sound = matcher.sound.as_ref().unwrap();
            let Rows::Narrow(rows) = sound.rows() else {
                panic!("a small dictionary has 16-bit rows");
            };
            let stepper = sound.stepper(rows, sound.pairs().narrow());
            let walk = |state: u32, letters: &[u32]| {
                letters
                    .iter()
                    .fold(state, |state, &letter| stepper.step(state, letter))
            };
            let syllables: std::collections::BTreeMap<u32, &[u32]> = matcher
                .chars
                .iter()
                .filter(|info| info.flags == HAN && info.len > 1)
                .map(|info| {
                    let from = info.piece as usize;
                    let letters = &matcher.pieces[from + 1..from + 1 + info.len as usize];
                    (matcher.pieces[from], letters)
                })
                .collect();
            assert!(syllables.len() > 100, "{}", syllables.len());
            for state in 0..sound.states() {
                for (&syllable, &letters) in &syllables {
                    assert_eq!(
                        stepper.step_syllable(state, NO_SYLLABLE, syllable, letters),
                        walk(state, letters),
                        "state {state}, syllable {syllable}"
                    );
                }
            }
            for (&previous, &before) in &syllables {
                let state = walk(ROOT, before);
                for (&syllable, &letters) in &syllables {
                    assert_eq!(
                        stepper.step_syllable(state, previous, syllable, letters),
                        walk(state, letters)
                    );
                }
            }
        }
    }

    fn small_matchers() -> &'static (Matcher, Matcher, reference::Reference) {
        static MATCHERS: std::sync::OnceLock<(Matcher, Matcher, reference::Reference)> =
            std::sync::OnceLock::new();
        MATCHERS.get_or_init(|| {
            let words = dictionary();
            (
                Matcher::new(vec![
                    word("傻逼", Severity::Block),
                    word("ass", Severity::Warn),
                ])
                .unwrap(),
                Matcher::new(words.clone()).unwrap(),
                reference::Reference::new(&words),
            )
        })
    }

    /// Characters that fold, sound or separate in every way the scanner knows.
    const MIXED: &str = "傻逼沙比骗騙子诈詐骗员工价内部价你好的是啊 ,.*-_|!@$@$ 0123456789 ldiotasshitkl \
        shabipianzinvlvü ＩＤＩＯＴ＠＄ｓｈａ①ⅲ㎏ﬁǖ女绿İß𠀀𪚥丽丽\u{3000}、。“”";

    /// The homophones' characters, their letters, separators, leetspeak and full-width forms.
    const HOMOPHONE_TEXT: &str = "是事市时十师西安先仙现傻沙杀逼比必骗片子字是市十西先傻逼骗子 \
        shixianabpzd shabi xian pianzi idiot ass scam  ,.*-@$ 013 ＳＨＡ①";

    proptest! {
        #[test]
        fn any_text_scans_as_the_two_stream_scan_did(
            chars in prop::collection::vec(prop::sample::select(MIXED.chars().collect::<Vec<_>>()), 0..60)
        ) {
            let text: String = chars.into_iter().collect();
            let (_, matcher, reference) = small_matchers();
            prop_assert_eq!(matcher.scan(&text), reference.scan(&text));
        }

        /// The ASCII loop, the syllable steps and the way between them, on text near the
        /// listed words.
        #[test]
        fn text_of_homophones_scans_as_the_two_stream_scan_did(
            chars in prop::collection::vec(prop::sample::select(HOMOPHONE_TEXT.chars().collect::<Vec<_>>()), 0..80)
        ) {
            static MATCHERS: std::sync::OnceLock<(Matcher, reference::Reference)> =
                std::sync::OnceLock::new();
            let (matcher, reference) = MATCHERS.get_or_init(|| {
                let words = homophones();
                (Matcher::new(words.clone()).unwrap(), reference::Reference::new(&words))
            });
            let text: String = chars.into_iter().collect();
            prop_assert_eq!(matcher.scan(&text), reference.scan(&text));
        }

        #[test]
        fn any_text_scans_without_panicking(text in "\\PC{0,120}") {
            let matcher = &small_matchers().0;
            for f in matcher.scan(&text) {
                prop_assert!(f.start < f.end && f.end <= text.len());
                prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
            }
        }
    }
}
