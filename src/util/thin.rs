//! An exact-size slice behind one thin pointer: 8 bytes in the owner (a boxed slice takes 16,
//! a vector 24), nothing allocated while empty, the length stored in front of the items.
//!
//! Why unsafe code for this: every subscriber's state holds three such lists (window buckets,
//! older cells, zone times), each usually empty or one or two items long; with tens of millions
//! of subscribers the 8 bytes saved per list are a tenth of the state. The lists change far
//! less often than they are read, so a change rebuilds the allocation through a `Vec`.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::marker::PhantomData;
use std::ptr::NonNull;

pub struct ThinSlice<T: Copy> {
    /// Points at a `usize` length followed (at `items_offset`) by that many `T`s.
    ptr: Option<NonNull<u8>>,
    _items: PhantomData<T>,
}

// SAFETY: the allocation is owned exclusively (like a `Box<[T]>`), so it moves and is shared
// between threads exactly as its items may be.
unsafe impl<T: Copy + Send> Send for ThinSlice<T> {}
unsafe impl<T: Copy + Sync> Sync for ThinSlice<T> {}

impl<T: Copy> ThinSlice<T> {
    /// Where the slice's memory starts (for a cache prefetch), if it has any.
    pub fn addr(&self) -> Option<*const u8> {
        self.ptr.map(|p| p.as_ptr().cast_const())
    }

    /// An empty list (nothing allocated).
    pub const fn new() -> ThinSlice<T> {
        ThinSlice { ptr: None, _items: PhantomData }
    }

    /// Layout of an allocation for `n` items and the offset of the first.
    fn layout(n: usize) -> (Layout, usize) {
        let (layout, offset) =
            Layout::new::<usize>().extend(Layout::array::<T>(n).expect("a small list")).expect("a small list");
        (layout.pad_to_align(), offset)
    }

    pub fn from_slice(items: &[T]) -> ThinSlice<T> {
        if items.is_empty() {
            return ThinSlice::default();
        }
        let (layout, offset) = Self::layout(items.len());
        // SAFETY: the layout has a non-zero size (it holds the length); the length and the items
        // are written within it, each at an offset aligned for its type by `Layout::extend`.
        unsafe {
            let p = alloc(layout);
            let Some(p) = NonNull::new(p) else { handle_alloc_error(layout) };
            p.as_ptr().cast::<usize>().write(items.len());
            std::ptr::copy_nonoverlapping(items.as_ptr(), p.as_ptr().add(offset).cast::<T>(), items.len());
            ThinSlice { ptr: Some(p), _items: PhantomData }
        }
    }

    fn len(&self) -> usize {
        // SAFETY: a non-null pointer always starts with the length `from_slice` wrote.
        self.ptr.map_or(0, |p| unsafe { p.as_ptr().cast::<usize>().read() })
    }

    pub fn as_slice(&self) -> &[T] {
        match self.ptr {
            None => &[],
            // SAFETY: `len` initialised items of `T` start at the offset, and live as long as
            // `self` is not changed (the borrow of `self` guarantees that).
            Some(p) => unsafe {
                let n = p.as_ptr().cast::<usize>().read();
                std::slice::from_raw_parts(p.as_ptr().add(Self::layout(n).1).cast::<T>(), n)
            },
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match self.ptr {
            None => &mut [],
            // SAFETY: as in `as_slice`; the allocation is owned by `self`, borrowed mutably.
            Some(p) => unsafe {
                let n = p.as_ptr().cast::<usize>().read();
                std::slice::from_raw_parts_mut(p.as_ptr().add(Self::layout(n).1).cast::<T>(), n)
            },
        }
    }

    /// Changes the list as a vector; the result is stored at its exact size, in place when the
    /// length did not change (a window's newest bucket in, its oldest out), else in the same
    /// allocation resized where the allocator can.
    #[inline]
    pub fn edit<R>(&mut self, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        // Room for what a change usually adds, so that the vector does not grow (and move) too.
        let mut v = Vec::with_capacity(self.len() + 4);
        self.edit_in(&mut v, f)
    }

    /// As [`ThinSlice::edit`], in the vector `buf` (cleared first): a caller that edits lists
    /// again and again keeps one and allocates nothing for the copy.
    #[inline]
    pub fn edit_in<R>(&mut self, buf: &mut Vec<T>, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        buf.clear();
        buf.extend_from_slice(self.as_slice());
        let r = f(buf);
        let n = self.len();
        if buf.len() == n {
            self.as_mut_slice().copy_from_slice(buf);
        } else {
            self.splice(0..n, buf);
        }
        r
    }

    /// Replaces the items in `range` with `with` (like `Vec::splice`), in the same allocation
    /// resized where the allocator can: a list that gains or loses an item is not copied into a
    /// fresh one each time, which with millions of subscribers' lists growing through the size
    /// classes kept the allocator taking fresh pages from the system.
    pub fn splice(&mut self, range: std::ops::Range<usize>, with: &[T]) {
        let old = self.len();
        assert!(range.start <= range.end && range.end <= old, "splice {range:?} of a list of {old}");
        let new = old - range.len() + with.len();
        let Some(mut p) = self.ptr else {
            *self = ThinSlice::from_slice(with);
            return;
        };
        if new == 0 {
            *self = ThinSlice::new();
            return;
        }
        let offset = Self::layout(old).1;
        // SAFETY: `p` holds `old` initialised items at `offset` (the offset is the same for every
        // length: it depends on the alignments only). Growing first keeps every shifted item
        // inside the allocation; shrinking last keeps the ones that stay; the length is written
        // before anything can read it, and nothing in between can panic. `with` cannot alias the
        // list (it is borrowed while the list is borrowed mutably).
        unsafe {
            if new > old {
                p = Self::resize(p, old, new);
            }
            let items = p.as_ptr().add(offset).cast::<T>();
            std::ptr::copy(items.add(range.end), items.add(range.start + with.len()), old - range.end);
            std::ptr::copy_nonoverlapping(with.as_ptr(), items.add(range.start), with.len());
            if new < old {
                p = Self::resize(p, old, new);
            }
            p.as_ptr().cast::<usize>().write(new);
        }
        self.ptr = Some(p);
    }

    /// Resizes an allocation made for `old` items to hold `new` (neither zero), keeping the
    /// bytes both have in common.
    ///
    /// # Safety
    /// `p` must be this type's allocation for `old` items.
    unsafe fn resize(p: NonNull<u8>, old: usize, new: usize) -> NonNull<u8> {
        let (from, to) = (Self::layout(old).0, Self::layout(new).0);
        // SAFETY: `p` was allocated with `from` (the caller's promise); `to` has the same
        // alignment and a non-zero size that does not overflow (`Layout` built it).
        let q = unsafe { std::alloc::realloc(p.as_ptr(), from, to.size()) };
        NonNull::new(q).unwrap_or_else(|| handle_alloc_error(to))
    }
}

impl<T: Copy> Drop for ThinSlice<T> {
    fn drop(&mut self) {
        if let Some(p) = self.ptr {
            // SAFETY: allocated by `from_slice` with the layout for this length.
            unsafe { dealloc(p.as_ptr(), Self::layout(self.len()).0) }
        }
    }
}

impl<T: Copy> Default for ThinSlice<T> {
    fn default() -> Self {
        ThinSlice::new()
    }
}

impl<T: Copy> Clone for ThinSlice<T> {
    fn clone(&self) -> Self {
        ThinSlice::from_slice(self.as_slice())
    }
}

impl<T: Copy + std::fmt::Debug> std::fmt::Debug for ThinSlice<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<T: Copy> std::ops::Deref for ThinSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Copy> std::ops::DerefMut for ThinSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::ThinSlice;

    #[test]
    fn thin_slices_hold_their_items_through_edits_and_clones() {
        assert_eq!(std::mem::size_of::<ThinSlice<(u32, i64)>>(), 8);
        let mut s: ThinSlice<(u32, i64)> = ThinSlice::default();
        assert!(s.is_empty() && s.as_slice().is_empty());
        s.edit(|v| v.extend((0..5).map(|i| (i, -i64::from(i)))));
        s[1].1 = 42;
        let c = s.clone();
        s.edit(|v| v.remove(0));
        assert_eq!(c.as_slice(), &[(0, 0), (1, 42), (2, -2), (3, -3), (4, -4)]);
        assert_eq!(s.as_slice(), &[(1, 42), (2, -2), (3, -3), (4, -4)]);
        // One in, one out: the same allocation, changed in place.
        let at = s.addr();
        s.edit(|v| {
            v.remove(0);
            v.push((5, 5));
        });
        assert_eq!((s.addr(), s.as_slice()), (at, &[(2, -2), (3, -3), (4, -4), (5, 5)][..]));
        s.edit(Vec::clear);
        assert!(s.is_empty() && s.as_slice().is_empty());
        let b: ThinSlice<u8> = ThinSlice::from_slice(&[1, 2, 3]);
        let mut t: ThinSlice<(u32, i64)> = ThinSlice::default();
        t.splice(0..0, &[(1, 1), (3, 3)]);
        t.splice(1..1, &[(2, 2)]);
        assert_eq!(t.as_slice(), &[(1, 1), (2, 2), (3, 3)]);
        t.splice(0..2, &[]);
        assert_eq!(t.as_slice(), &[(3, 3)]);
        t.splice(1..1, &[(4, 4), (5, 5), (6, 6)]);
        t.splice(0..1, &[(0, 0)]);
        assert_eq!(t.as_slice(), &[(0, 0), (4, 4), (5, 5), (6, 6)]);
        t.splice(0..4, &[]);
        assert!(t.is_empty() && t.addr().is_none());
        assert_eq!((b.len(), &*b), (3, &[1u8, 2, 3][..]));
    }
}
