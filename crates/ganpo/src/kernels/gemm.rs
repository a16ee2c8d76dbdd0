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
    // SAFETY: every index the kernel touches was bounds-checked above (`fits` for the inputs;
    // rows `i < m` of `n ≤ dst_row_stride` elements at `i · dst_row_stride` for `dst`); `dst` is
    // exclusively borrowed and does not alias `a` or `b` (shared borrows).
    unsafe { gemm_raw(dst.as_mut_ptr(), dst_row_stride, a, b, accumulate, threads) };
    Ok(())
}

/// `a · b` as a new row-major `a.rows × b.cols` buffer (every rayon thread), written by the
/// kernel without zero-filling it first when the product takes the `gemm` crate's blocked path,
/// which stores its results without reading the destination when not accumulating. (Its small-
/// and thin-matrix paths get a zeroed buffer: they are cheap, and not all of them are
/// write-only.)
pub(crate) fn matmul_new(a: MatRef<'_>, b: MatRef<'_>) -> candle_core::Result<Vec<f32>> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || !a.fits() || !b.fits() {
        candle_core::bail!(
            "matmul: [{m}, {k}] × [{}, {n}] (or a view out of bounds)",
            b.rows
        );
    }
    if m < 2 || n < 2 || k < 3 || m * n <= 256 {
        let mut out = vec![0f32; m * n];
        matmul(&mut out, a, b, false)?;
        return Ok(out);
    }
    let mut out = super::buffer::uninit(m * n);
    // SAFETY: the operands were bounds-checked above and `out` holds the m × n result with row
    // stride n, aliasing neither operand. With `accumulate` off and m, n ≥ 2, k ≥ 3, m · n > 256,
    // the `gemm` crate takes its blocked path, whose micro-kernels store α = 0 results without
    // loading the destination (gemm-common 0.19: `alpha_status == 0`), so every element is
    // written and none is read.
    unsafe {
        gemm_raw(
            out.as_mut_ptr().cast::<f32>(),
            n,
            a,
            b,
            false,
            rayon::current_num_threads(),
        );
        Ok(super::buffer::assume_init(out))
    }
}

/// The `gemm` crate's product into `dst` with row stride `dst_row_stride`.
///
/// # Safety
///
/// `a` and `b` must be in bounds and agree on `k`; `dst` must be valid for writes (and, when
/// `accumulate`, reads) of rows `i < a.rows` of `b.cols ≤ dst_row_stride` elements at
/// `i · dst_row_stride`, and must not overlap the operands.
unsafe fn gemm_raw(
    dst: *mut f32,
    dst_row_stride: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if super::skinny::applies(m, k, a.col_stride, b.row_stride) {
        // SAFETY: the caller's contract; `a` has contiguous rows (`col_stride` 1) of `k`
        // elements at `row_stride`, and `b` is the transpose of `n` contiguous rows of `k`
        // elements at `col_stride`.
        unsafe {
            super::skinny::product(
                super::skinny::Operands {
                    dst,
                    dst_stride: dst_row_stride,
                    x: a.data.as_ptr(),
                    x_stride: a.row_stride,
                    w: b.data.as_ptr(),
                    w_stride: b.col_stride,
                    m,
                    k,
                    n,
                    accumulate,
                },
                threads,
            )
        };
        return;
    }
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the caller's contract.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            dst,
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
}
