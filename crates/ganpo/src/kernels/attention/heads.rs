//! Where the rows of one attention head live in a query, key or value buffer.

use super::super::gemm::MatRef;

/// The heads of a query, key or value buffer. Element `(batch, head, row, j)` is at
/// `((batch · heads + head) · slots + row) · dim + j` in the separate layout
/// (`[batch, heads, len, dim]`, or the first `len` of `slots` rows of a `[batch, heads, slots, dim]`
/// key/value cache), and at `(batch · len + row) · row_stride + offset + head · dim + j`
/// in a packed one (`[batch, len, …]` rows holding q, k and v side by side, as the output of one
/// fused projection).
#[derive(Debug, Clone, Copy)]
pub(super) struct Heads<'a> {
    pub data: &'a [f32],
    pub heads: usize,
    pub len: usize,
    pub dim: usize,
    /// Rows per head in the separate layout's buffer (`len` unless it is a cache with room for more).
    pub slots: usize,
    /// `None`: separate layout; `Some((row_stride, offset))`: packed.
    pub packed: Option<(usize, usize)>,
}

impl<'a> Heads<'a> {
    /// Rows `first..first + rows` of head `head` of batch entry `batch`, as a `rows × dim` matrix.
    pub fn rows(&self, batch: usize, head: usize, first: usize, rows: usize) -> MatRef<'a> {
        let (start, row_stride) = match self.packed {
            None => (
                ((batch * self.heads + head) * self.slots + first) * self.dim,
                self.dim,
            ),
            Some((row_stride, offset)) => (
                (batch * self.len + first) * row_stride + offset + head * self.dim,
                row_stride,
            ),
        };
        MatRef {
            data: &self.data[start.min(self.data.len())..],
            rows,
            cols: self.dim,
            row_stride,
            col_stride: 1,
        }
    }
}
