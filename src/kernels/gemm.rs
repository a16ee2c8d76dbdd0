//! A bounds-checked f32 matrix product on the `gemm` crate (the kernel candle's CPU matmul uses),
//! for custom ops that multiply inside their own loops.

/// A read-only strided matrix view: element `(i, j)` is `data[i · row_stride + j · col_stride]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A row-major `rows × cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// `dst (+)= a · b` for a row-major `dst` of `a.rows × b.cols`; adds to `dst` when `accumulate`.
/// Uses every rayon thread.
pub(crate) fn matmul(
    dst: &mut [f32],
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
) -> candle_core::Result<()> {
    let threads = rayon::current_num_threads();
    matmul_into(dst, b.cols, a, b, accumulate, threads)
}

/// `dst (+)= a · b` where row `i` of the `a.rows × b.cols` result starts at `dst[i · dst_row_stride]`
/// (so `dst` may be a column block of a wider row-major matrix); `threads` > 1 splits the product
/// over rayon's pool, 1 keeps it on the calling thread (for products inside a parallel loop).
pub(crate) fn matmul_into(
    dst: &mut [f32],
    dst_row_stride: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    threads: usize,
) -> candle_core::Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    let dst_fits =
        m == 0 || n == 0 || (n <= dst_row_stride && (m - 1) * dst_row_stride + n <= dst.len());
    if b.rows != k || !dst_fits || !a.fits() || !b.fits() {
        candle_core::bail!(
            "matmul: [{m}, {k}] × [{}, {n}] into {} elements with row stride {dst_row_stride} \
             (or a view out of bounds)",
            b.rows,
            dst.len()
        );
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index the kernel touches was bounds-checked above (`fits` for the inputs;
    // rows `i < m` of `n ≤ dst_row_stride` elements at `i · dst_row_stride` for `dst`); `dst` is
    // exclusively borrowed and does not alias `a` or `b` (shared borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}
