//! `Subj`: an interned subject held by every index entry. `Arc<str>` is a fat pointer (16
//! bytes); this is a thin one (8), which matters at millions of entries. It hashes and
//! compares as the string, so maps keyed by it are looked up with a `&str`.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

#[derive(Clone)]
#[allow(clippy::redundant_allocation)] // the Box is the point: a thin pointer to a str
pub(crate) struct Subj(Arc<Box<str>>);

impl Subj {
    pub fn new(s: &str) -> Self {
        Subj(Arc::new(Box::from(s)))
    }
}

impl Deref for Subj {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Subj {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Hash for Subj {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (**self).hash(h)
    }
}

impl PartialEq for Subj {
    fn eq(&self, o: &Self) -> bool {
        Arc::ptr_eq(&self.0, &o.0) || **self == **o
    }
}

impl Eq for Subj {}
