//! The chains on the host: ReLU → depthwise → 1×1 → BatchNorm image by
//! image, so that an image's intermediates are used while they are in
//! cache instead of being written out and read back by the next op. Each
//! image runs the very per-plane and per-group kernels of the single ops
//! (`depthwise::PlaneFwd`, `PlaneBwd`, `gemm::gemm`, `gemm::gemm_nt`, the
//! BatchNorm plane functions) and every sum is taken in the single ops'
//! order, so a chain gives the single ops' results to the bit
//! (tests/chains.rs holds it to them):
//!
//! - forward in training, per image: each plane's depthwise conv into `d`,
//!   `p = w_pw · d` per group while `d` is in cache, and each plane of p's
//!   BatchNorm moments while it is in cache; then the moments merged in
//!   image order, and p normalised into y (the one pass the statistics
//!   leave: every image's must be known first);
//! - forward in evaluation, per image: the same convs, and p normalised by
//!   the running statistics while in cache (p is not written out);
//! - backward: BatchNorm's two sums per plane of p and dy (one pass); then
//!   per image, `dp` (BatchNorm's input gradient) into a scratch of one
//!   image, `dd = w_pwᵀ · dp` into another, the image's share of the 1×1
//!   filter gradient `dp · dᵀ`, and each plane's depthwise data and filter
//!   gradients from `dd`. The filter shares are summed in image order
//!   afterwards: the depthwise ones one by one, as the depthwise op adds
//!   them; the 1×1 ones within each thread's run of images first, as the
//!   1×1 op's per-thread partial sums do.

use std::sync::OnceLock;

use super::depthwise::{self, PlaneBwd, PlaneFwd};
use super::gemm::{self, gemm, gemm_nt};
use super::{ChainGeom, ChainGrads, ChainNorm, ChainSaved};
use crate::device::Write;
use crate::ops::bn::cpu::{self as bn, BwdSums, Moments, Pair};
use crate::par;
use crate::real::Real;

/// `d = dwconv(relu?(x), w_dw)`, `p = w_pw · d`, `y = BN(p)`; parallel over
/// images.
pub fn fwd<T: Real>(
    c: &ChainGeom,
    x: &[T],
    w_dw: &[T],
    w_pw: &[T],
    norm: ChainNorm<'_, Vec<T>>,
    d: &mut [T],
    y: &mut [T],
) {
    let (g, p, b) = (&c.dw, &c.pw, &c.bn);
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let sub = gemm::group_geom(p);
    let a = gemm::pack_groups(p, &sub, w_pw, false);
    let (dg, pg, pn) = (sub.cin * ohw, sub.cout * ohw, p.cout * ohw);
    let (gamma, beta) = (norm.gamma.map(|v| &v[..]), norm.beta.map(|v| &v[..]));
    // Image n's depthwise output into `dn`, its 1×1 output into `pn`.
    let convs = |pf: &mut PlaneFwd<T>, n: usize, dn: &mut [T], pn: &mut [T]| {
        for (ch, dp) in dn.chunks_exact_mut(ohw).enumerate() {
            pf.run(g, &x[(n * g.cin + ch) * hw..][..hw], &w_dw[ch * kk..][..kk], dp);
        }
        for (gi, a) in a.iter().enumerate() {
            gemm(a, ohw, &dn[gi * dg..][..dg], ohw, &mut pn[gi * pg..][..pg], ohw, false);
        }
    };
    let Some((pbuf, saved)) = norm.batch else {
        let inv = bn::running_inv(b, norm.running_var);
        let mean = &norm.running_mean[..];
        let mut images: Vec<_> = d.chunks_mut(g.cin * ohw).zip(y.chunks_mut(pn)).collect();
        par::for_chunks_init(
            &mut images,
            1,
            c.macs(),
            || (PlaneFwd::new(g), vec![T::ZERO; pn]),
            |(pf, pscratch), n, image| {
                let (dn, yn) = &mut image[0];
                convs(pf, n, dn, pscratch);
                for (ch, (yp, pp)) in yn.chunks_exact_mut(ohw).zip(pscratch.chunks_exact(ohw)).enumerate() {
                    bn::apply_plane(ch, pp, gamma, beta, mean, &inv, yp);
                }
            },
        );
        return;
    };
    let moments: Vec<OnceLock<Vec<Moments>>> = (0..g.n).map(|_| OnceLock::new()).collect();
    let mut images: Vec<_> = d.chunks_mut(g.cin * ohw).zip(pbuf.chunks_mut(pn)).collect();
    par::for_chunks_init(
        &mut images,
        1,
        c.macs(),
        || PlaneFwd::new(g),
        |pf, n, image| {
            let (dn, pn) = &mut image[0];
            convs(pf, n, dn, pn);
            let m = pn.chunks_exact(ohw).map(Moments::of).collect();
            assert!(moments[n].set(m).is_ok(), "each image is one chunk");
        },
    );
    let planes: Vec<Moments> = moments.into_iter().flat_map(|m| m.into_inner().expect("every image ran")).collect();
    bn::finish_stats(b, &bn::merge_images(b, &planes), saved, norm.running_mean, norm.running_var);
    let (mean, inv) = saved.split_at(b.c);
    bn::apply(b, pbuf, gamma, beta, mean, inv, y);
}

/// One image's shares of the two filter gradients.
#[derive(Default)]
struct Shares<T> {
    dw: Vec<T>,
    pw: Vec<T>,
}

/// Whichever gradients `grads` asks for, from `dy` and what the forward
/// kept; parallel over images.
#[allow(clippy::too_many_arguments)]
pub fn bwd<T: Real>(
    c: &ChainGeom,
    x: &[T],
    w_dw: &[T],
    w_pw: &[T],
    saved: ChainSaved<'_, Vec<T>>,
    dy: &[T],
    grads: ChainGrads<'_, Vec<T>>,
) {
    let (g, p, b) = (&c.dw, &c.pw, &c.bn);
    let (hw, ohw, kk) = (g.h * g.w, g.oh * g.ow, g.k * g.k);
    let ChainSaved { d, p: pbuf, saved: stats, gamma } = saved;
    let gamma = gamma.map(|v| &v[..]);
    let through_convs = grads.through_convs();
    let ChainGrads { x: dx, w_dw: dwdw, w_pw: dwpw, gamma: dgamma, beta: dbeta } = grads;

    // BatchNorm's sums: each image's planes, then per channel in image order.
    let per_image = par::map(g.n, b.n * b.c * b.hw, |n| {
        (0..b.c)
            .map(|ch| {
                let at = (n * b.c + ch) * ohw;
                bn::bwd_plane_sums(&pbuf[at..][..ohw], &dy[at..][..ohw], stats[ch])
            })
            .collect::<Vec<_>>()
    });
    let sums: Vec<Pair> =
        (0..b.c).map(|ch| per_image.iter().fold(Pair::default(), |acc, image| acc + image[ch])).collect();
    let sums = BwdSums::new(b, &sums, stats, dgamma, dbeta);
    if !through_convs {
        return;
    }

    let sub = gemm::group_geom(p);
    let (dg, pg, wg, pn) = (sub.cin * ohw, sub.cout * ohw, sub.cout * sub.cin, p.cout * ohw);
    let (want_dx, want_dw, want_pw) = (dx.is_some(), dwdw.is_some(), dwpw.is_some());
    // dd is needed for either depthwise gradient.
    let want_dd = want_dx || want_dw;
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
        || {
            let dd = vec![T::ZERO; if want_dd { g.cin * ohw } else { 0 }];
            (PlaneBwd::new(g, want_dx, want_dw), vec![T::ZERO; pn], dd)
        },
        |(pb, dp, dd), n, image| {
            let (pimg, dyimg) = (&pbuf[n * pn..][..pn], &dy[n * pn..][..pn]);
            for (ch, ((dpp, pp), dyp)) in
                dp.chunks_exact_mut(ohw).zip(pimg.chunks_exact(ohw)).zip(dyimg.chunks_exact(ohw)).enumerate()
            {
                sums.dx_plane(ch, gamma, stats, pp, dyp, dpp, Write::Set);
            }
            let mut share = Shares::default();
            if want_pw {
                share.pw = vec![T::ZERO; p.cout * sub.cin];
                let dn = &d[n * g.cin * ohw..][..g.cin * ohw];
                for gi in 0..p.groups {
                    let (dpg, dgi) = (&dp[gi * pg..][..pg], &dn[gi * dg..][..dg]);
                    gemm_nt(sub.cout, sub.cin, ohw, dpg, ohw, dgi, ohw, &mut share.pw[gi * wg..][..wg], sub.cin);
                }
            }
            if want_dd {
                for (gi, a) in at.iter().enumerate() {
                    gemm(a, ohw, &dp[gi * pg..][..pg], ohw, &mut dd[gi * dg..][..dg], ohw, false);
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
