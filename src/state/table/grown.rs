//! A vector that never moves what it holds, for the subscriber table's records and states.

/// Entries of a [`Grown`] past the loaded ones go in blocks of this many.
pub(super) const BLOCK: usize = 1 << 14;

/// A vector that never moves what it holds: the entries it starts with stay where they are, and
/// those added later go into blocks of [`BLOCK`] allocated as needed. Growing a plain vector
/// copies all of it at once (a stall of tens of milliseconds at 100,000 subscribers, seconds at
/// 10 million, and twice the memory meanwhile); here it costs one block now and then.
pub(super) struct Grown<T> {
    first: Vec<T>,
    /// Full blocks but the last.
    more: Vec<Vec<T>>,
}

impl<T> Default for Grown<T> {
    fn default() -> Self {
        Grown::from(Vec::new())
    }
}

impl<T> From<Vec<T>> for Grown<T> {
    fn from(first: Vec<T>) -> Self {
        Grown { first, more: Vec::new() }
    }
}

impl<T> Grown<T> {
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.first.len() + self.more.last().map_or(0, |b| (self.more.len() - 1) * BLOCK + b.len())
    }

    pub(super) fn push(&mut self, v: T) {
        match self.more.last_mut() {
            Some(b) if b.len() < BLOCK => b.push(v),
            _ => {
                let mut b = Vec::with_capacity(BLOCK);
                b.push(v);
                self.more.push(b);
            }
        }
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> Option<&T> {
        match i.checked_sub(self.first.len()) {
            None => self.first.get(i),
            Some(j) => self.more.get(j / BLOCK)?.get(j % BLOCK),
        }
    }

    #[inline]
    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        match i.checked_sub(self.first.len()) {
            None => self.first.get_mut(i),
            Some(j) => self.more.get_mut(j / BLOCK)?.get_mut(j % BLOCK),
        }
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.first.iter_mut().chain(self.more.iter_mut().flat_map(|b| b.iter_mut()))
    }

    /// Removes entry `i`, the last entry taking its place.
    pub(super) fn swap_remove(&mut self, i: usize) -> T {
        let last = match self.more.last_mut() {
            Some(b) => {
                let v = b.pop().expect("blocks are never empty");
                if b.is_empty() {
                    self.more.pop();
                }
                v
            }
            None => self.first.pop().expect("an entry to remove"),
        };
        if i == self.len() { last } else { std::mem::replace(&mut self[i], last) }
    }

    /// Bytes held, reserved room included.
    pub(super) fn bytes(&self) -> usize {
        (self.first.capacity() + self.more.iter().map(Vec::capacity).sum::<usize>()) * std::mem::size_of::<T>()
    }
}

impl<T> std::ops::Index<usize> for Grown<T> {
    type Output = T;
    #[inline]
    fn index(&self, i: usize) -> &T {
        self.get(i).expect("an entry of the table")
    }
}

impl<T> std::ops::IndexMut<usize> for Grown<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.get_mut(i).expect("an entry of the table")
    }
}
