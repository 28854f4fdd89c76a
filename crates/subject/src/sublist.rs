//! The subscription index: a trie of subject tokens with separate children
//! for `*` and `>`, so matching a published subject walks only the branches
//! that can match instead of testing every subscription.
//!
//! Items are opaque to the index (the server stores its subscription handles);
//! they are compared with `PartialEq` on removal. Queue subscribers are kept
//! per group name, and a match merges same-named groups found on different
//! branches (`foo.*` and `foo.bar` in group `q` form one group for `foo.bar`),
//! so a message goes to exactly one member of each group.
//!
//! The index itself is not synchronised; the server wraps it in a lock and
//! caches match results keyed by [`Sublist::generation`].

use ahash::AHashMap;

use crate::rules::tokens;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SublistError {
    #[error("invalid subject")]
    InvalidSubject,
}

/// The members of one queue group that matched a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGroup<T> {
    pub name: Box<[u8]>,
    pub members: Vec<T>,
}

/// Everything interested in one subject: plain subscribers get every message,
/// each queue group gets it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchResult<T> {
    pub psubs: Vec<T>,
    pub qsubs: Vec<QueueGroup<T>>,
}

impl<T> Default for MatchResult<T> {
    fn default() -> Self {
        MatchResult {
            psubs: Vec::new(),
            qsubs: Vec::new(),
        }
    }
}

impl<T> MatchResult<T> {
    pub fn is_empty(&self) -> bool {
        self.psubs.is_empty() && self.qsubs.is_empty()
    }

    /// Number of subscriptions in the result.
    pub fn len(&self) -> usize {
        self.psubs.len() + self.qsubs.iter().map(|q| q.members.len()).sum::<usize>()
    }
}

struct Node<T> {
    next: Option<Box<Level<T>>>,
    psubs: Vec<T>,
    qsubs: Vec<QueueGroup<T>>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Node {
            next: None,
            psubs: Vec::new(),
            qsubs: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.psubs.is_empty()
            && self.qsubs.is_empty()
            && self.next.as_ref().is_none_or(|l| l.is_empty())
    }
}

struct Level<T> {
    literals: AHashMap<Box<[u8]>, Node<T>>,
    pwc: Option<Box<Node<T>>>,
    fwc: Option<Box<Node<T>>>,
}

impl<T> Default for Level<T> {
    fn default() -> Self {
        Level {
            literals: AHashMap::new(),
            pwc: None,
            fwc: None,
        }
    }
}

impl<T> Level<T> {
    fn is_empty(&self) -> bool {
        self.literals.is_empty() && self.pwc.is_none() && self.fwc.is_none()
    }
}

/// The subscription index. See the module docs.
pub struct Sublist<T> {
    root: Level<T>,
    count: usize,
    generation: u64,
}

impl<T> Default for Sublist<T> {
    fn default() -> Self {
        Sublist {
            root: Level::default(),
            count: 0,
            generation: 0,
        }
    }
}

impl<T: Clone + PartialEq> Sublist<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subscriptions held.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Changes on every insert and removal; cached match results taken at an
    /// older generation are stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds `item` for `subject` (optionally in queue group `queue`).
    pub fn insert(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        item: T,
    ) -> Result<(), SublistError> {
        if !crate::is_valid_subject(subject) {
            return Err(SublistError::InvalidSubject);
        }
        let mut level = &mut self.root;
        let mut toks = tokens(subject).peekable();
        let node = loop {
            // Validity was checked above, so there is always a next token here.
            let Some(tok) = toks.next() else {
                return Err(SublistError::InvalidSubject);
            };
            let node: &mut Node<T> = match tok {
                b"*" => level.pwc.get_or_insert_with(Box::default),
                b">" => level.fwc.get_or_insert_with(Box::default),
                lit => level.literals.entry(lit.into()).or_default(),
            };
            if toks.peek().is_none() {
                break node;
            }
            level = node.next.get_or_insert_with(Box::default);
        };
        match queue {
            None => node.psubs.push(item),
            Some(q) => match node.qsubs.iter_mut().find(|g| &*g.name == q) {
                Some(g) => g.members.push(item),
                None => node.qsubs.push(QueueGroup {
                    name: q.into(),
                    members: vec![item],
                }),
            },
        }
        self.count += 1;
        self.generation += 1;
        Ok(())
    }

    /// Removes one `item` previously inserted with the same subject and queue.
    /// Returns whether it was found. Empty branches are pruned.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, item: &T) -> bool {
        let toks: Vec<&[u8]> = tokens(subject).collect();
        if toks.iter().any(|t| t.is_empty()) {
            return false;
        }
        let removed = remove_from(&mut self.root, &toks, queue, item);
        if removed {
            self.count -= 1;
            self.generation += 1;
        }
        removed
    }

    /// Everything interested in the literal `subject`.
    pub fn matches(&self, subject: &[u8]) -> MatchResult<T> {
        let mut result = MatchResult::default();
        let toks: smallvec_like::Tokens = smallvec_like::Tokens::new(subject);
        if toks.as_slice().iter().any(|t| t.is_empty()) {
            return result;
        }
        match_level(&self.root, toks.as_slice(), &mut result);
        result
    }

    /// Whether anything at all is interested in `subject`.
    pub fn has_interest(&self, subject: &[u8]) -> bool {
        !self.matches(subject).is_empty()
    }

    /// Visits every subscription with its subject and queue.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], Option<&[u8]>, &T)) {
        let mut path = Vec::new();
        visit_level(&self.root, &mut path, &mut f);
    }
}

fn remove_from<T: PartialEq>(
    level: &mut Level<T>,
    toks: &[&[u8]],
    queue: Option<&[u8]>,
    item: &T,
) -> bool {
    let Some((&tok, rest)) = toks.split_first() else {
        return false;
    };
    let node: &mut Node<T> = match tok {
        b"*" => match level.pwc.as_deref_mut() {
            Some(n) => n,
            None => return false,
        },
        b">" => match level.fwc.as_deref_mut() {
            Some(n) => n,
            None => return false,
        },
        lit => match level.literals.get_mut(lit) {
            Some(n) => n,
            None => return false,
        },
    };
    let removed = if rest.is_empty() {
        remove_item(node, queue, item)
    } else {
        match node.next.as_deref_mut() {
            Some(next) => {
                let removed = remove_from(next, rest, queue, item);
                if next.is_empty() {
                    node.next = None;
                }
                removed
            }
            None => false,
        }
    };
    if removed && node.is_empty() {
        match tok {
            b"*" => level.pwc = None,
            b">" => level.fwc = None,
            lit => {
                level.literals.remove(lit);
            }
        }
    }
    removed
}

fn remove_item<T: PartialEq>(node: &mut Node<T>, queue: Option<&[u8]>, item: &T) -> bool {
    match queue {
        None => match node.psubs.iter().position(|s| s == item) {
            Some(i) => {
                node.psubs.swap_remove(i);
                true
            }
            None => false,
        },
        Some(q) => {
            let Some(gi) = node.qsubs.iter().position(|g| &*g.name == q) else {
                return false;
            };
            let group = &mut node.qsubs[gi];
            let Some(i) = group.members.iter().position(|s| s == item) else {
                return false;
            };
            group.members.swap_remove(i);
            if group.members.is_empty() {
                node.qsubs.swap_remove(gi);
            }
            true
        }
    }
}

fn add_node<T: Clone>(node: &Node<T>, result: &mut MatchResult<T>) {
    result.psubs.extend(node.psubs.iter().cloned());
    for group in &node.qsubs {
        match result.qsubs.iter_mut().find(|g| g.name == group.name) {
            Some(g) => g.members.extend(group.members.iter().cloned()),
            None => result.qsubs.push(group.clone()),
        }
    }
}

fn match_level<T: Clone>(level: &Level<T>, toks: &[&[u8]], result: &mut MatchResult<T>) {
    let Some((&tok, rest)) = toks.split_first() else {
        return;
    };
    if let Some(fwc) = &level.fwc {
        add_node(fwc, result);
    }
    if let Some(pwc) = &level.pwc {
        match_node(pwc, rest, result);
    }
    if let Some(lit) = level.literals.get(tok) {
        match_node(lit, rest, result);
    }
}

fn match_node<T: Clone>(node: &Node<T>, rest: &[&[u8]], result: &mut MatchResult<T>) {
    if rest.is_empty() {
        add_node(node, result);
    } else if let Some(next) = &node.next {
        match_level(next, rest, result);
    }
}

fn visit_level<T>(
    level: &Level<T>,
    path: &mut Vec<u8>,
    f: &mut impl FnMut(&[u8], Option<&[u8]>, &T),
) {
    let children = level
        .literals
        .iter()
        .map(|(k, n)| (&**k, n))
        .chain(level.pwc.as_deref().map(|n| (&b"*"[..], n)))
        .chain(level.fwc.as_deref().map(|n| (&b">"[..], n)));
    for (tok, node) in children {
        let mark = path.len();
        if !path.is_empty() {
            path.push(b'.');
        }
        path.extend_from_slice(tok);
        for s in &node.psubs {
            f(path, None, s);
        }
        for g in &node.qsubs {
            for s in &g.members {
                f(path, Some(&g.name), s);
            }
        }
        if let Some(next) = &node.next {
            visit_level(next, path, f);
        }
        path.truncate(mark);
    }
}

/// Token splitting without a heap allocation for the common short subject.
mod smallvec_like {
    const INLINE: usize = 16;

    // Lives on the stack for one match call; the inline variant's size is the point.
    #[allow(clippy::large_enum_variant)]
    pub enum Tokens<'a> {
        Inline([&'a [u8]; INLINE], usize),
        Heap(Vec<&'a [u8]>),
    }

    impl<'a> Tokens<'a> {
        pub fn new(subject: &'a [u8]) -> Self {
            let mut arr: [&'a [u8]; INLINE] = [&[]; INLINE];
            let mut n = 0;
            for t in crate::rules::tokens(subject) {
                if n == INLINE {
                    return Tokens::Heap(crate::rules::tokens(subject).collect());
                }
                arr[n] = t;
                n += 1;
            }
            Tokens::Inline(arr, n)
        }

        pub fn as_slice(&self) -> &[&'a [u8]] {
            match self {
                Tokens::Inline(arr, n) => &arr[..*n],
                Tokens::Heap(v) => v,
            }
        }
    }
}

#[cfg(test)]
mod tests;
