//! The automaton each stream is matched with: Aho-Corasick over symbols, stepped one symbol at a
//! time, so the scanner folds a character and matches it in the same pass instead of writing the
//! streams out first.
//!
//! A symbol is a small number for a character the patterns use; every other character is symbol
//! 0, which sends any state back to the root. Every state has a full row of transitions on the
//! ASCII symbols (letters, digits: most steps, the sound stream's pinyin included), one lookup
//! whatever the state. The other symbols (Han characters, too many for a row per state) follow
//! the trie's children and failure links, with a full row at the root.
//!
//! The rows are most of the memory and most of what a scan waits for, so they are kept small:
//! 16-bit entries when the states allow, busy states (that many patterns go through: where
//! ordinary text keeps the automaton) numbered first so that they share cache lines, and states
//! that end a pattern numbered last, so that a state number alone tells whether something
//! matched. (Rows only for the states more than one pattern goes through, a tenth of them, took
//! less memory but more time: a step from the others needed their failure link's row too.)
//!
//! The sound stream spells each Han character's syllable letter by letter, each step waiting for
//! the one before; a table of syllable pairs makes the common case one lookup (`step_syllable`).

use std::collections::HashMap;

/// The start state.
pub(super) const ROOT: u32 = 0;
/// A stream character's sound is not a known syllable.
pub(super) const NO_SYLLABLE: u32 = u32::MAX;

/// A pattern: the word it stands for and its length in symbols.
pub(super) struct Pattern {
    pub word: u32,
    pub len: u32,
}

/// Rows of 16- or 32-bit entries, as the number of states allows.
pub(super) enum Rows {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl Rows {
    pub fn narrow(&self) -> &[u16] {
        match self {
            Rows::Narrow(rows) => rows,
            Rows::Wide(_) => &[],
        }
    }

    pub fn wide(&self) -> &[u32] {
        match self {
            Rows::Wide(rows) => rows,
            Rows::Narrow(_) => &[],
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Rows::Narrow(rows) => rows.len() * 2,
            Rows::Wide(rows) => rows.len() * 4,
        }
    }
}

/// An entry of the rows.
pub(super) trait Entry: Copy {
    fn get(self) -> u32;
}

impl Entry for u16 {
    #[inline(always)]
    fn get(self) -> u32 {
        self as u32
    }
}

impl Entry for u32 {
    #[inline(always)]
    fn get(self) -> u32 {
        self
    }
}

pub(super) struct Automaton {
    ascii: [u32; 128],
    others: HashMap<char, u32>,
    /// Symbols below this are answered by the rows.
    width: u32,
    /// A row's length is `1 << shift`.
    shift: u32,
    rows: Rows,
    /// For a stream of syllables (the sound of Han characters): the state after each syllable
    /// from the root, and the state after syllable `b` from there, at `a * syllables + b`. A
    /// Han character's sound is then one lookup when the automaton is where the previous
    /// character's syllable alone leads (most of the time), instead of a step per letter, each
    /// waiting for the one before.
    syllables: usize,
    syllable_roots: Vec<u32>,
    pairs: Rows,
    /// States from this one on end at least one pattern.
    first_match: u32,
    /// The root's transitions on every symbol.
    root: Vec<u32>,
    /// Per state, for symbols without rows: its children's symbols modulo 64 as a mask (most
    /// steps are not to a child: one test tells), its failure link, and where its children are
    /// in `sparse`, as (symbol, state).
    links: Vec<Links>,
    sparse: Vec<(u32, u32)>,
    /// Patterns ending at each state: `outputs[output_start[s]..output_start[s + 1]]`.
    output_start: Vec<u32>,
    outputs: Vec<u32>,
    patterns: Vec<Pattern>,
    max_len: usize,
}

#[derive(Clone, Copy)]
struct Links {
    mask: u64,
    fail: u32,
    /// Children from here to the next state's `children`.
    children: u32,
}

/// The rows of an automaton with their entry type known, for stepping.
#[derive(Clone, Copy)]
pub(super) struct Stepper<'a, T> {
    automaton: &'a Automaton,
    rows: &'a [T],
    pairs: &'a [T],
    syllables: u32,
    width: u32,
    shift: u32,
    first_match: u32,
}

impl<T: Entry> Stepper<'_, T> {
    /// The state after `symbol` from `state`.
    #[inline(always)]
    pub fn step(&self, state: u32, symbol: u32) -> u32 {
        if symbol < self.width {
            return self.rows[((state as usize) << self.shift) | symbol as usize].get();
        }
        // A Han character, mostly: rarely a child, and from a state whose failure link is the
        // root (near it, where ordinary text keeps the automaton) the root's step.
        let automaton = self.automaton;
        let links = automaton.links[state as usize];
        if links.mask >> (symbol % 64) & 1 == 0 && links.fail == ROOT {
            return automaton.root[symbol as usize];
        }
        automaton.step_by_children(state, symbol)
    }

    /// The state after syllable `this` (spelled `letters`) from `state`, which may be where
    /// syllable `previous` alone leads (checked).
    #[inline(always)]
    pub fn step_syllable(&self, state: u32, previous: u32, this: u32, letters: &[u32]) -> u32 {
        if previous < self.syllables
            && this < self.syllables
            && state == self.automaton.syllable_roots[previous as usize]
        {
            return self.pairs[(previous * self.syllables + this) as usize].get();
        }
        let mut state = state;
        for &letter in letters {
            state = self.step(state, letter);
        }
        state
    }

    /// Whether patterns end at `state`.
    #[inline(always)]
    pub fn matches(&self, state: u32) -> bool {
        state >= self.first_match
    }

    pub fn automaton(&self) -> &Automaton {
        self.automaton
    }
}

impl Automaton {
    /// Builds from patterns (their characters, and the word each stands for); no pattern is empty
    /// and none is listed twice.
    pub fn new(patterns: &[(Vec<char>, u32)]) -> Automaton {
        let mut alphabet: Vec<char> = patterns
            .iter()
            .flat_map(|(p, _)| p.iter().copied())
            .collect();
        alphabet.sort_unstable();
        alphabet.dedup();
        // ASCII first (it sorts first), so that they are the symbols with rows.
        let mut ascii = [0u32; 128];
        let mut others = HashMap::new();
        let mut width: u32 = 1;
        for (index, &c) in alphabet.iter().enumerate() {
            let symbol = index as u32 + 1;
            if c.is_ascii() {
                ascii[c as usize] = symbol;
                width += 1;
            } else {
                others.insert(c, symbol);
            }
        }
        let symbols = alphabet.len() as u32 + 1;
        let symbol_of = |c: char| {
            if c.is_ascii() {
                ascii[c as usize]
            } else {
                others[&c]
            }
        };

        // The trie, in order of insertion.
        let mut children: Vec<Vec<(u32, u32)>> = vec![Vec::new()];
        let mut own: Vec<Vec<u32>> = vec![Vec::new()];
        let mut max_len = 0;
        let mut pattern_list = Vec::with_capacity(patterns.len());
        for (index, (chars, word)) in patterns.iter().enumerate() {
            let mut state = 0usize;
            for &c in chars {
                let symbol = symbol_of(c);
                state = match children[state].iter().find(|(s, _)| *s == symbol) {
                    Some(&(_, next)) => next as usize,
                    None => {
                        let next = children.len();
                        children.push(Vec::new());
                        own.push(Vec::new());
                        children[state].push((symbol, next as u32));
                        next
                    }
                };
            }
            own[state].push(index as u32);
            max_len = max_len.max(chars.len());
            pattern_list.push(Pattern {
                word: *word,
                len: chars.len() as u32,
            });
        }
        for list in &mut children {
            list.sort_unstable();
        }
        let goto = |state: usize, symbol: u32| -> Option<u32> {
            let list = &children[state];
            list.binary_search_by_key(&symbol, |&(s, _)| s)
                .ok()
                .map(|i| list[i].1)
        };

        // Failure links and outputs, breadth first: a state's failure link is shallower, so
        // known before the state.
        let states = children.len();
        let mut order = vec![0usize];
        let mut fail = vec![0u32; states];
        let mut next = 0;
        while next < order.len() {
            let state = order[next];
            next += 1;
            for &(symbol, child) in &children[state] {
                fail[child as usize] = if state == 0 {
                    0
                } else {
                    let mut back = fail[state] as usize;
                    loop {
                        if let Some(target) = goto(back, symbol) {
                            break target;
                        }
                        if back == 0 {
                            break 0;
                        }
                        back = fail[back] as usize;
                    }
                };
                order.push(child as usize);
            }
        }
        let mut output_lists = own;
        for &state in &order[1..] {
            let inherited = output_lists[fail[state] as usize].clone();
            output_lists[state].extend(inherited);
        }

        // Numbering: states more patterns go through first (a scan of ordinary text keeps the
        // automaton near them: they share cache lines), states that end a pattern last.
        let mut through = vec![0u32; states];
        for (chars, _) in patterns {
            let mut state = 0usize;
            through[0] += 1;
            for &c in chars {
                state = goto(state, symbol_of(c)).map_or(0, |s| s as usize);
                through[state] += 1;
            }
        }
        let mut number = vec![0u32; states];
        let mut numbered: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&s| output_lists[s].is_empty())
            .collect();
        // Stable: breadth first among states as busy.
        numbered.sort_by_key(|&s| std::cmp::Reverse(through[s]));
        let first_match = numbered.len() as u32;
        numbered.extend(
            order
                .iter()
                .copied()
                .filter(|&s| !output_lists[s].is_empty()),
        );
        for (index, &state) in numbered.iter().enumerate() {
            number[state] = index as u32;
        }

        // Rows, filled breadth first so that a state's failure link's row is filled first.
        let shift = width.next_power_of_two().trailing_zeros();
        let row = 1usize << shift;
        let mut rows = vec![0u32; states * row];
        for &state in &order {
            let at = number[state] as usize * row;
            let back = number[fail[state] as usize] as usize * row;
            for symbol in 0..width {
                rows[at + symbol as usize] = match goto(state, symbol) {
                    Some(child) => number[child as usize],
                    None if state == 0 => ROOT,
                    None => rows[back + symbol as usize],
                };
            }
        }
        let rows = if states <= 1 << 16 {
            Rows::Narrow(rows.iter().map(|&s| s as u16).collect())
        } else {
            Rows::Wide(rows)
        };
        let root = (0..symbols)
            .map(|symbol| goto(0, symbol).map_or(ROOT, |child| number[child as usize]))
            .collect();

        let mut links = Vec::with_capacity(states);
        let mut sparse = Vec::new();
        let mut output_start = Vec::with_capacity(states + 1);
        let mut outputs = Vec::new();
        for &state in &numbered {
            let children_from = sparse.len() as u32;
            let mut mask = 0u64;
            for &(symbol, child) in &children[state] {
                if symbol >= width {
                    mask |= 1 << (symbol % 64);
                    sparse.push((symbol, number[child as usize]));
                }
            }
            links.push(Links {
                mask,
                fail: number[fail[state] as usize],
                children: children_from,
            });
            output_start.push(outputs.len() as u32);
            outputs.extend_from_slice(&output_lists[state]);
        }
        output_start.push(outputs.len() as u32);

        Automaton {
            ascii,
            others,
            width,
            shift,
            rows,
            syllables: 0,
            syllable_roots: Vec::new(),
            pairs: Rows::Narrow(Vec::new()),
            first_match,
            root,
            links,
            sparse,
            output_start,
            outputs,
            patterns: pattern_list,
            max_len,
        }
    }

    /// The symbol of a character; 0 when no pattern uses it.
    pub fn symbol(&self, c: char) -> u32 {
        if c.is_ascii() {
            self.ascii[c as usize]
        } else {
            self.others.get(&c).copied().unwrap_or(0)
        }
    }

    pub fn rows(&self) -> &Rows {
        &self.rows
    }

    pub fn pairs(&self) -> &Rows {
        &self.pairs
    }

    /// A stepper over `rows` and `pairs`, which must be this automaton's.
    pub fn stepper<'a, T>(&'a self, rows: &'a [T], pairs: &'a [T]) -> Stepper<'a, T> {
        let syllables = if pairs.len() == self.syllables * self.syllables {
            self.syllables as u32
        } else {
            0
        };
        Stepper {
            automaton: self,
            rows,
            pairs,
            syllables,
            width: self.width,
            shift: self.shift,
            first_match: self.first_match,
        }
    }

    /// The state after `symbols` from `state`, for building.
    fn walk(&self, state: u32, symbols: &[u32]) -> u32 {
        symbols
            .iter()
            .fold(state, |state, &symbol| match &self.rows {
                Rows::Narrow(rows) => self.stepper(rows, &[]).step(state, symbol),
                Rows::Wide(rows) => self.stepper(rows, &[]).step(state, symbol),
            })
    }

    /// Prepares syllable steps for these syllables (each spelled in symbols), numbered in order.
    pub fn set_syllables(&mut self, syllables: &[Vec<u32>]) {
        let count = syllables.len();
        // More than pinyin has: not worth the table.
        if count > 2048 {
            return;
        }
        self.syllable_roots = syllables.iter().map(|s| self.walk(ROOT, s)).collect();
        let pairs: Vec<u32> = self
            .syllable_roots
            .iter()
            .flat_map(|&root| syllables.iter().map(move |s| (root, s)))
            .map(|(root, s)| self.walk(root, s))
            .collect();
        self.pairs = match self.rows {
            Rows::Narrow(_) => Rows::Narrow(pairs.iter().map(|&s| s as u16).collect()),
            Rows::Wide(_) => Rows::Wide(pairs),
        };
        self.syllables = count;
    }

    /// A step on a symbol without rows: a child, or the failure link's step.
    #[inline(never)]
    fn step_by_children(&self, state: u32, symbol: u32) -> u32 {
        let mut state = state as usize;
        loop {
            if state == ROOT as usize {
                return self.root[symbol as usize];
            }
            let links = self.links[state];
            if links.mask >> (symbol % 64) & 1 != 0 {
                let from = links.children as usize;
                let to = self
                    .links
                    .get(state + 1)
                    .map_or(self.sparse.len(), |l| l.children as usize);
                for &(s, next) in &self.sparse[from..to] {
                    if s == symbol {
                        return next;
                    }
                }
            }
            state = links.fail as usize;
        }
    }

    /// The patterns that end at `state`.
    pub fn outputs(&self, state: u32) -> impl Iterator<Item = &Pattern> {
        let from = self.output_start[state as usize] as usize;
        let to = self.output_start[state as usize + 1] as usize;
        self.outputs[from..to]
            .iter()
            .map(|&p| &self.patterns[p as usize])
    }

    /// The longest pattern, in symbols.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Bytes held, for the bench's report.
    pub fn heap_bytes(&self) -> usize {
        self.rows.bytes()
            + self.pairs.bytes()
            + self.syllable_roots.len() * 4
            + self.root.len() * 4
            + self.links.len() * std::mem::size_of::<Links>()
            + self.sparse.len() * 8
            + self.output_start.len() * 4
            + self.outputs.len() * 4
            + self.patterns.len() * 8
            + self.others.len() * 16
    }
}
