//! The automaton each stream is matched with: Aho-Corasick over symbols, stepped one symbol at a
//! time, so the scanner folds a character and matches it in the same pass instead of writing the
//! streams out first.
//!
//! A symbol is a small number for a character the patterns use; every other character is symbol
//! 0, which sends any state back to the root. Every state has a full row of transitions on the
//! first `ROW` symbols, the ASCII ones (letters and two digits once folded: most steps, the sound
//! stream's pinyin included), one lookup whatever the state. The other symbols (Han characters,
//! too many for a row per state) follow the trie's children and failure links, with a full row
//! at the root; two 64-bit filters of a state's children's symbols tell, nearly always, that a
//! symbol is none of them, and those symbols are numbered so that symbol 0 never passes.
//!
//! The rows are most of the memory and most of what a scan waits for, so they are kept small:
//! 16-bit entries when the states allow, a row to a cache line, busy states (that many patterns
//! go through: where ordinary text keeps the automaton) numbered first so that they share the
//! cache, and states that end a pattern numbered last, so that a state number alone tells
//! whether something matched. (Rows only for the states more than one pattern goes through, a tenth of them, took
//! less memory but more time: a step from the others needed their failure link's row too.)
//!
//! The sound stream spells each Han character's syllable letter by letter, each step waiting for
//! the one before. A Han character's whole syllable is one step instead (`step_syllable`): from a
//! state a syllable alone leads to, a table of syllable pairs answers; from any other, the
//! syllables that continue the state's path in the trie, else the same from its failure link,
//! as an Aho-Corasick automaton over syllables.

use std::collections::HashMap;

/// The start state.
pub(super) const ROOT: u32 = 0;
/// A stream character's sound is not a known syllable.
pub(super) const NO_SYLLABLE: u32 = u32::MAX;
/// Symbols below this have a full row of transitions in every state. Patterns are folded, so
/// their ASCII characters are lower-case letters and two digits: all of them fit.
pub(super) const ROW: usize = 32;
/// Marks a `SyllableLinks::then` that is a row of the pairs table rather than a state.
const PAIRS_ROW: u32 = 1 << 31;

/// A pattern: the word it stands for and its length in symbols.
pub(super) struct Pattern {
    pub word: u32,
    pub len: u32,
}

/// A state's transitions on the first `ROW` symbols, starting a cache line: a step reads one.
#[derive(Clone, Copy)]
#[repr(align(64))]
pub(super) struct Row<T>(pub [T; ROW]);

/// Rows of 16- or 32-bit entries, as the number of states allows.
pub(super) enum Rows {
    Narrow(Vec<Row<u16>>),
    Wide(Vec<Row<u32>>),
}

impl Rows {
    fn bytes(&self) -> usize {
        match self {
            Rows::Narrow(rows) => rows.len() * std::mem::size_of::<Row<u16>>(),
            Rows::Wide(rows) => rows.len() * std::mem::size_of::<Row<u32>>(),
        }
    }
}

/// A table of 16- or 32-bit entries, as the rows'.
pub(super) enum Table {
    Narrow(Vec<u16>),
    Wide(Vec<u32>),
}

impl Table {
    pub fn narrow(&self) -> &[u16] {
        match self {
            Table::Narrow(table) => table,
            Table::Wide(_) => &[],
        }
    }

    pub fn wide(&self) -> &[u32] {
        match self {
            Table::Wide(table) => table,
            Table::Narrow(_) => &[],
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Table::Narrow(table) => table.len() * 2,
            Table::Wide(table) => table.len() * 4,
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
    /// `ROW` transitions per state.
    rows: Rows,
    /// For a stream of syllables (the sound of Han characters): the state after each syllable
    /// from the root, and the state after syllable `b` from there, at `a * syllables + b`. A
    /// Han character's sound is then one lookup when the automaton is where the previous
    /// character's syllable alone leads (most of the time), instead of a step per letter, each
    /// waiting for the one before.
    /// The pairs table has a row per syllable, and one more for the root when no syllable alone
    /// leads there.
    syllables: usize,
    syllable_roots: Vec<u32>,
    pairs: Table,
    /// Per state, a syllable step from any state: the syllables that continue its path in the
    /// trie (mask and where they are in `syllable_children`, as (syllable, state)), and where to
    /// look next when none does.
    syllable_links: Vec<SyllableLinks>,
    syllable_children: Vec<(u32, u32)>,
    /// States from this one on end at least one pattern.
    first_match: u32,
    /// The root's transitions on every symbol.
    root: Vec<u32>,
    /// Per state, for symbols without rows: a filter of its children's symbols (most steps are
    /// not to a child: one test tells, nearly always), its failure link, and where its children
    /// are in `sparse`, as (symbol, state).
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
    /// Bit `symbol % 64` of the first and bit `scatter(symbol)` of the second are set for every
    /// child's symbol: a symbol without both is no child. (One mask alone let through a fifth
    /// of the Han characters after a busy state.)
    masks: [u64; 2],
    fail: u32,
    /// Children from here to the next state's `children`.
    children: u32,
}

impl Links {
    #[inline(always)]
    fn may_have(&self, symbol: u32) -> bool {
        (self.masks[0] >> (symbol % 64)) & (self.masks[1] >> scatter(symbol)) & 1 != 0
    }
}

/// A bit for a symbol, unrelated to `symbol % 64` (Fibonacci hashing).
#[inline(always)]
fn scatter(symbol: u32) -> u32 {
    symbol.wrapping_mul(0x9E37_79B9) >> 26
}

#[derive(Clone, Copy, Default)]
struct SyllableLinks {
    mask: u64,
    /// Children from here to the next state's `children`.
    children: u32,
    /// A state's syllable not among its children: the pairs table's row `then & !PAIRS_ROW`
    /// answers when `then & PAIRS_ROW` is set, else state `then` (on the failure chain, with
    /// children of its own) is asked.
    then: u32,
}

/// The rows of an automaton with their entry type known, for stepping.
#[derive(Clone, Copy)]
pub(super) struct Stepper<'a, T> {
    automaton: &'a Automaton,
    rows: &'a [Row<T>],
    pairs: &'a [T],
    syllables: u32,
    first_match: u32,
}

impl<T: Entry> Stepper<'_, T> {
    /// The state after `symbol` from `state`.
    #[inline(always)]
    pub fn step(&self, state: u32, symbol: u32) -> u32 {
        if (symbol as usize) < ROW {
            return self.rows[state as usize].0[symbol as usize].get();
        }
        self.step_beyond_rows(state, symbol)
    }

    /// The state after `symbol` from `state`, for a symbol that has no rows or is 0 (a character
    /// no pattern has).
    #[inline(always)]
    pub fn step_beyond_rows(&self, state: u32, symbol: u32) -> u32 {
        // A Han character, mostly: rarely a child, and from a state whose failure link is the
        // root (near it, where ordinary text keeps the automaton) the root's step.
        let automaton = self.automaton;
        let links = automaton.links[state as usize];
        if !links.may_have(symbol) && links.fail == ROOT {
            return automaton.root[symbol as usize];
        }
        automaton.step_by_children(state, symbol)
    }

    /// The state after syllable `this` (spelled `letters`) from `state`, which may be where
    /// syllable `previous` alone leads (checked).
    #[inline(always)]
    pub fn step_syllable(&self, state: u32, previous: u32, this: u32, letters: &[u32]) -> u32 {
        if this < self.syllables {
            if previous < self.syllables
                && state == self.automaton.syllable_roots[previous as usize]
            {
                return self.pairs[(previous * self.syllables + this) as usize].get();
            }
            return self.syllable_by_links(state, this);
        }
        let mut state = state;
        for &letter in letters {
            state = self.step(state, letter);
        }
        state
    }

    /// The state after syllable `this` from `state`: a child of the state's, or the step from
    /// its failure link, down to a state the pairs table has a row for.
    #[inline(always)]
    fn syllable_by_links(&self, mut state: u32, this: u32) -> u32 {
        let automaton = self.automaton;
        loop {
            let links = automaton.syllable_links[state as usize];
            if links.mask >> (this % 64) & 1 != 0 {
                let to = automaton
                    .syllable_links
                    .get(state as usize + 1)
                    .map_or(automaton.syllable_children.len(), |l| l.children as usize);
                for &(syllable, next) in &automaton.syllable_children[links.children as usize..to] {
                    if syllable == this {
                        return next;
                    }
                }
            }
            if links.then & PAIRS_ROW != 0 {
                let row = links.then & !PAIRS_ROW;
                return self.pairs[(row * self.syllables + this) as usize].get();
            }
            state = links.then;
        }
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
        // ASCII first (it sorts first), so that they are the symbols with rows. The others start
        // after the rows and skip multiples of 64: no state's mask has symbol 0's bit, so a
        // character no pattern has is one lookup from anywhere (`step_beyond_rows`).
        let mut ascii = [0u32; 128];
        let mut others = HashMap::new();
        let (mut next_in_rows, mut next_beyond) = (1, ROW as u32);
        for &c in &alphabet {
            let symbol = if c.is_ascii() && next_in_rows < ROW as u32 {
                next_in_rows += 1;
                next_in_rows - 1
            } else {
                if next_beyond % 64 == 0 {
                    next_beyond += 1;
                }
                next_beyond += 1;
                next_beyond - 1
            };
            if c.is_ascii() {
                ascii[c as usize] = symbol;
            } else {
                others.insert(c, symbol);
            }
        }
        let width = ROW as u32;
        let symbols = next_beyond;
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
        let row = ROW;
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
            Rows::Narrow(
                rows.chunks_exact(ROW)
                    .map(|row| Row(std::array::from_fn(|symbol| row[symbol] as u16)))
                    .collect(),
            )
        } else {
            Rows::Wide(
                rows.chunks_exact(ROW)
                    .map(|row| Row(std::array::from_fn(|symbol| row[symbol])))
                    .collect(),
            )
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
            let mut masks = [0u64; 2];
            for &(symbol, child) in &children[state] {
                if symbol >= width {
                    masks[0] |= 1 << (symbol % 64);
                    masks[1] |= 1 << scatter(symbol);
                    sparse.push((symbol, number[child as usize]));
                }
            }
            // The root's step is its row of every symbol: nothing to filter.
            if state == 0 {
                masks = [0; 2];
            }
            links.push(Links {
                masks,
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
            rows,
            syllables: 0,
            syllable_roots: Vec::new(),
            pairs: Table::Narrow(Vec::new()),
            syllable_links: Vec::new(),
            syllable_children: Vec::new(),
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

    pub fn pairs(&self) -> &Table {
        &self.pairs
    }

    /// A stepper over `rows` and `pairs`, which must be this automaton's.
    pub fn stepper<'a, T>(&'a self, rows: &'a [Row<T>], pairs: &'a [T]) -> Stepper<'a, T> {
        let syllables = if self.syllables > 0 && pairs.len() >= self.syllables * self.syllables {
            self.syllables as u32
        } else {
            0
        };
        Stepper {
            automaton: self,
            rows,
            pairs,
            syllables,
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
        let states = self.links.len();
        // More than pinyin has: not worth the tables.
        if count == 0 || count > 2048 || states >= PAIRS_ROW as usize {
            return;
        }
        self.syllable_roots = syllables.iter().map(|s| self.walk(ROOT, s)).collect();
        // A row of pairs for each state a syllable alone leads to, and for the root.
        let mut row_of: HashMap<u32, u32> = HashMap::new();
        for (syllable, &root) in self.syllable_roots.iter().enumerate() {
            row_of.entry(root).or_insert(syllable as u32);
        }
        let mut row_starts = self.syllable_roots.clone();
        if let std::collections::hash_map::Entry::Vacant(entry) = row_of.entry(ROOT) {
            entry.insert(count as u32);
            row_starts.push(ROOT);
        }
        let pairs: Vec<u32> = row_starts
            .iter()
            .flat_map(|&start| syllables.iter().map(move |s| (start, s)))
            .map(|(start, s)| self.walk(start, s))
            .collect();

        let depth = self.depths();
        // The syllables that continue each state's path: the syllables spelled out as a trie of
        // their own, walked beside the automaton's children.
        let mut spelled: Vec<(HashMap<u32, usize>, Option<u32>)> = vec![(HashMap::new(), None)];
        for (number, letters) in syllables.iter().enumerate() {
            let mut node = 0;
            for &letter in letters {
                node = match spelled[node].0.get(&letter) {
                    Some(&next) => next,
                    None => {
                        spelled.push((HashMap::new(), None));
                        let next = spelled.len() - 1;
                        spelled[node].0.insert(letter, next);
                        next
                    }
                };
            }
            spelled[node].1.get_or_insert(number as u32);
        }
        let mut links = vec![SyllableLinks::default(); states];
        let mut children = Vec::new();
        let mut stack = Vec::new();
        for (state, link) in links.iter_mut().enumerate() {
            link.children = children.len() as u32;
            if let Some(&row) = row_of.get(&(state as u32)) {
                link.then = PAIRS_ROW | row;
                continue;
            }
            let from = children.len();
            stack.clear();
            stack.push((state as u32, 0usize));
            while let Some((at, node)) = stack.pop() {
                for (&letter, &next) in &spelled[node].0 {
                    let child = self.walk(at, &[letter]);
                    if depth[child as usize] != depth[at as usize] + 1 {
                        continue;
                    }
                    if let Some(syllable) = spelled[next].1 {
                        children.push((syllable, child));
                    }
                    stack.push((child, next));
                }
            }
            children[from..].sort_unstable();
            for &(syllable, _) in &children[from..] {
                link.mask |= 1 << (syllable % 64);
            }
        }
        // Where to look when no child continues: the failure link's row, or the first state on
        // the failure chain with children (shallower states first, so theirs is known).
        let mut by_depth: Vec<usize> = (0..states).collect();
        by_depth.sort_by_key(|&state| depth[state]);
        for state in by_depth {
            if links[state].then & PAIRS_ROW != 0 {
                continue;
            }
            let fail = self.links[state].fail as usize;
            let then = &links[fail];
            links[state].then = if then.mask != 0 {
                fail as u32
            } else {
                then.then
            };
        }
        self.pairs = match self.rows {
            Rows::Narrow(_) => Table::Narrow(pairs.iter().map(|&s| s as u16).collect()),
            Rows::Wide(_) => Table::Wide(pairs),
        };
        self.syllable_links = links;
        self.syllable_children = children;
        self.syllables = count;
    }

    /// Each state's depth in the trie (the length of the path it stands for), breadth first:
    /// a step to a state not seen yet is to a child, as every shallower state is seen already.
    fn depths(&self) -> Vec<u32> {
        let states = self.links.len();
        let mut depth = vec![u32::MAX; states];
        depth[ROOT as usize] = 0;
        let mut queue = std::collections::VecDeque::from([ROOT]);
        while let Some(state) = queue.pop_front() {
            let links = self.links[state as usize];
            let to = self
                .links
                .get(state as usize + 1)
                .map_or(self.sparse.len(), |l| l.children as usize);
            let beyond = self.sparse[links.children as usize..to]
                .iter()
                .map(|&(_, s)| s);
            let in_rows = (1..ROW as u32).map(|symbol| self.walk(state, &[symbol]));
            for next in in_rows.chain(beyond) {
                if depth[next as usize] == u32::MAX {
                    depth[next as usize] = depth[state as usize] + 1;
                    queue.push_back(next);
                }
            }
        }
        depth
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
            if links.may_have(symbol) {
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

    #[cfg(test)]
    pub fn states(&self) -> u32 {
        self.links.len() as u32
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
            + self.syllable_links.len() * std::mem::size_of::<SyllableLinks>()
            + self.syllable_children.len() * 8
            + self.root.len() * 4
            + self.links.len() * std::mem::size_of::<Links>()
            + self.sparse.len() * 8
            + self.output_start.len() * 4
            + self.outputs.len() * 4
            + self.patterns.len() * 8
            + self.others.len() * 16
    }
}
