//! The chains on the host: ReLU → depthwise → 1×1 image by image, so that
//! an image's depthwise output `d` (forward) and its gradient `dd`
//! (backward) are used while they are in cache instead of being written
//! out and read back by a second op. Each image runs the very per-plane
//! and per-group kernels of the single ops (`depthwise::PlaneFwd`,
//! `PlaneBwd`, `gemm::gemm`, `gemm::gemm_nt`) and the filter gradients are
//! summed in the single ops' order, so a chain gives the single ops'
//! results to the bit (tests/chains.rs holds it to them):
//!
//! - forward, per image: each plane's depthwise conv into `d` (kept for the
//!   backward), then `y = w_pw · d` per group while `d` is in cache;
//! - backward, per image: `dd = w_pwᵀ · dy` into a scratch of one image,
//!   the image's share of the 1×1 filter gradient `dy · dᵀ`, then each
//!   plane's depthwise data and filter gradients from `dd`. The shares are
//!   summed in image order afterwards: the depthwise ones one by one, as
//!   the depthwise op adds them; the 1×1 ones within each thread's run of
//!   images first, as the 1×1 op's per-thread partial sums do.

use std::sync::OnceLock;

use super::depthwise::{self, PlaneBwd, PlaneFwd};
use super::gemm::{self, gemm, gemm_nt};
use super::{ChainGeom, ChainGrads};
use crate::device::Write;
use crate::par;
use crate::real::Real;

/// `d = dwconv(relu?(x), w_dw)`, `y = w_pw · d`; parallel over images.
pub fn fwd<T: Real>(c: &ChainGeom, x: &[T], w_dw: &[T], w_pw: &[T], d: &mut [T], y: &mut [T]) {
    let (g, p) = (&c.dw, &c.pw);
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let sub = gemm::group_geom(p);
    let a = gemm::pack_groups(p, &sub, w_pw, false);
    let (dg, yg) = (sub.cin * ohw, sub.cout * ohw);
    let mut images: Vec<_> = d.chunks_mut(g.cin * ohw).zip(y.chunks_mut(p.cout * ohw)).collect();
    par::for_chunks_init(
        &mut images,
        1,
        c.macs(),
        || PlaneFwd::new(g),
        |pf, n, image| {
            let (dn, yn) = &mut image[0];
            for (ch, dp) in dn.chunks_exact_mut(ohw).enumerate() {
                pf.run(g, &x[(n * g.cin + ch) * hw..][..hw], &w_dw[ch * kk..][..kk], dp);
            }
            for (gi, a) in a.iter().enumerate() {
                gemm(a, ohw, &dn[gi * dg..][..dg], ohw, &mut yn[gi * yg..][..yg], ohw, false);
            }
        },
    );
}

/// One image's shares of the two filter gradients.
#[derive(Default)]
struct Shares<T> {
    dw: Vec<T>,
    pw: Vec<T>,
}

/// Whichever gradients `grads` asks for, from `dy` and the forward's `d`;
/// parallel over images.
#[allow(clippy::too_many_arguments)]
pub fn bwd<T: Real>(c: &ChainGeom, x: &[T], w_dw: &[T], w_pw: &[T], d: &[T], dy: &[T], grads: ChainGrads<'_, Vec<T>>) {
    let (g, p) = (&c.dw, &c.pw);
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let sub = gemm::group_geom(p);
    let (dg, yg, wg) = (sub.cin * ohw, sub.cout * ohw, sub.cout * sub.cin);
    let ChainGrads { x: dx, w_dw: dwdw, w_pw: dwpw } = grads;
    let (want_dx, want_dw, want_pw) = (dx.is_some(), dwdw.is_some(), dwpw.is_some());
    // dd is needed for either depthwise gradient.
    let want_dd = want_dx || want_dw;
    if !(want_dd || want_pw) {
        return;
    }
    let at = if want_dd { gemm::pack_groups(p, &sub, w_pw, true) } else { Vec::new() };
    let write = dx.as_ref().map_or(Write::Add, |d| d.1);
    let mut images: Vec<Option<&mut [T]>> = match dx {
        Some((dx, _)) => dx.chunks_mut(g.cin * hw).map(Some).collect(),
        None => (0..g.n).map(|_| None).collect(),
    };
    let shares: Vec<OnceLock<Shares<T>>> = (0..g.n).map(|_| OnceLock::new()).collect();
    par::for_chunks_init(
        &mut images,
        1,
        2 * c.macs(),
        || (PlaneBwd::new(g, want_dx, want_dw), vec![T::ZERO; if want_dd { g.cin * ohw } else { 0 }]),
        |(pb, dd), n, image| {
            let dyn_ = &dy[n * p.cout * ohw..][..p.cout * ohw];
            let mut share = Shares::default();
            if want_pw {
                share.pw = vec![T::ZERO; p.cout * sub.cin];
                let dn = &d[n * g.cin * ohw..][..g.cin * ohw];
                for gi in 0..p.groups {
                    let (dyg, dgi) = (&dyn_[gi * yg..][..yg], &dn[gi * dg..][..dg]);
                    gemm_nt(sub.cout, sub.cin, ohw, dyg, ohw, dgi, ohw, &mut share.pw[gi * wg..][..wg], sub.cin);
                }
            }
            if !want_dd {
                assert!(shares[n].set(share).is_ok(), "each image is one chunk");
                return;
            }
            for (gi, a) in at.iter().enumerate() {
                gemm(a, ohw, &dyn_[gi * yg..][..yg], ohw, &mut dd[gi * dg..][..dg], ohw, false);
            }
            if want_dw {
                share.dw = vec![T::ZERO; g.cin * kk];
            }
            let mut dxn = image[0].as_deref_mut();
            for ch in 0..g.cin {
                let (xp, ddp) = (&x[(n * g.cin + ch) * hw..][..hw], &dd[ch * ohw..][..ohw]);
                if let Some(dxn) = dxn.as_deref_mut() {
                    pb.data(g, xp, &w_dw[ch * kk..][..kk], ddp, &mut dxn[ch * hw..][..hw], write);
                }
                if want_dw {
                    pb.filter(g, xp, ddp, &mut share.dw[ch * kk..][..kk]);
                }
            }
            assert!(shares[n].set(share).is_ok(), "each image is one chunk");
        },
    );
    let shares: Vec<Shares<T>> = shares.into_iter().map(|s| s.into_inner().expect("every image ran")).collect();
    if let Some((dw, write)) = dwdw {
        if write == Write::Set {
            dw.fill(T::ZERO);
        }
        for s in &shares {
            depthwise::add_share(dw, &s.dw);
        }
    }
    if let Some((dw, write)) = dwpw {
        if write == Write::Set {
            dw.fill(T::ZERO);
        }
        // The 1×1 op's per-thread partial sums: its threads' runs of images.
        let per = g.n.div_ceil(par::threads_for(p.n, p.macs()));
        for run in shares.chunks(per) {
            let mut part = vec![T::ZERO; dw.len()];
            for s in run {
                depthwise::add_share(&mut part, &s.pw);
            }
            depthwise::add_share(dw, &part);
        }
    }
}
