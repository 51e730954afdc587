"""The sLSTM cell in PyTorch (paper eq. 8-17): a readable step, and a fused sequence for training.

Same names, arguments and layout as the numpy core (``xlstm_edu.np.slstm_recurrent``): gate order (i, f, z, o);
wx (..., S, 4, H) the input contributions W x_t of every gate; R (4, NH, DH, DH) block-diagonal with
``pre_g[..., head j] += h_{t-1}[..., head j] @ R[g, j]`` (memory mixing only inside a head); b (4, H);
state (h, c, n, m), each (..., H).

* ``slstm_step``       one step with plain torch ops (autograd differentiates it): the code to read.
* ``slstm_recurrent``  the whole sequence. The time loop cannot be parallelised (h_{t-1} feeds the gates), so
  per-step overhead decides the speed on a CPU. It runs as one ``torch.autograd.Function``:
  - the four gates' recurrent products are one batched matmul per step (``baddbmm`` over heads, the bias
    and W x_t already added), followed by a handful of element-wise ops;
  - the backward pass through time is written by hand (about ten ops per step, no autograd graph of
    S × 20 nodes), with every factor that does not depend on the incoming gradient computed for all steps at
    once after the forward loop.
  The stabilizer m is treated as a constant, which is exact here: h = o·c/n does not depend on m (no eps in
  the sLSTM, App. A.2). ``tests/test_nn_cells.py`` checks the result against ``slstm_step`` looped under
  autograd, the numpy core, and the official vanilla sLSTM cell.

Inputs follow the same rules as the numpy engine (``xlstm_edu._validate``: shapes, finite values, a state the
recurrence can produce). The cell computes in at least float32 and returns h in the inputs' dtype, so float16/bfloat16
inputs get float32 gate arithmetic; the state is carried and returned in the compute dtype.

From a zero state (state=None, or n = 0) the first step sets m_1 = ĩ_1, as the official cell and the numpy core do.
A given initial m_0 is differentiated (it scales the incoming memory, entering through f'_1), later m_t are not.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from xlstm_edu._validate import cell_dims, check_cell_state
from xlstm_edu.nn._checks import check_forget_gate, check_state_tuple, check_tensors, check_values, dtypes
from xlstm_edu.nn.gating import log_forget_gate

__all__ = ["slstm_step", "slstm_recurrent", "slstm_zero_state"]

STATE_NAMES = ("h", "c", "n", "m")


# ----------------------------------------------------------------------------------------------------------------
def _prepare(wx, R, b, state, forget_gate, *, step: bool):
    """The rules of ``xlstm_edu._validate`` (as in the numpy engine), then a cast to the compute dtype (at least
    float32). Returns (wx, R, b, state or None, lead, H, NH, DH, out_dtype)."""
    name = "wx_t" if step else "wx"
    named = {name: wx, "R": R, "b": b}
    check_tensors(named)
    check_forget_gate(forget_gate)
    lead, _, H, NH, DH = cell_dims(wx, R, b, heads=True, step=step)
    if state is not None:
        state = check_state_tuple(state, STATE_NAMES)
        named.update({f"state {nm}": s for nm, s in zip(STATE_NAMES, state)})
        check_tensors(named)
        check_cell_state(state, STATE_NAMES, lead, H)
    check_values(named, slstm_state=None if state is None else (state[1], state[2]))
    out, cd = dtypes((wx, R, b))  # the state is carried in the compute dtype, whatever it came in
    wx, R, b = wx.to(cd), R.to(cd), b.to(cd)
    if state is not None:
        state = tuple(s.to(cd) for s in state)
    return wx, R, b, state, lead, H, NH, DH, out


def _block_inputs(wx, R, b, state, *, values: bool, step: bool):
    """For the sLSTM block, which builds wx, R and b itself: only a given state is checked (its tensors and shapes,
    and with ``values`` its values), with the messages of the public functions; then the cast of ``_prepare``."""
    lead, H = wx.shape[:-2], wx.shape[-1]
    if not step:
        lead = lead[:-1]
    if state is not None:
        state = check_state_tuple(state, STATE_NAMES)
        named = {f"state {nm}": s for nm, s in zip(STATE_NAMES, state)}
        check_tensors({"wx_t" if step else "wx": wx, **named})
        check_cell_state(state, STATE_NAMES, tuple(lead), H)
        if values:
            check_values(named, slstm_state=(state[1], state[2]))
    cd = torch.promote_types(torch.promote_types(wx.dtype, R.dtype), torch.promote_types(b.dtype, torch.float32))
    wx, R, b = wx.to(cd), R.to(cd), b.to(cd)
    if state is not None:
        state = tuple(s.to(cd) for s in state)
    return wx, R, b, state


def slstm_zero_state(batch_shape, hidden_size: int, *, dtype=torch.float32, device=None):
    """(h, c, n, m) = zeros, the start of a sequence (official convention)."""
    z = torch.zeros(*batch_shape, hidden_size, dtype=dtype, device=device)
    return z, z.clone(), z.clone(), z.clone()


def _empty_memory_m(n, m):
    """An entry with n = 0 is an empty memory: m_{t-1} = -inf, so the next step sets m_t = ĩ_t, i' = 1, f' = 0
    (the official first step from a zero state, ``if torch.all(n == 0): mnew = iraw``; decided per entry here,
    like the numpy core). n never returns to 0 after a step (n_t >= 1), so this matters only for the first."""
    return torch.where(n == 0, -math.inf, m)


# ----------------------------------------------------------------------------------------------------------------
def slstm_step(wx_t, R, b, state=None, forget_gate: str = "sigmoid"):
    """One sLSTM step (eq. 8-17). wx_t (..., 4, H); returns (h_t, (h_t, c_t, n_t, m_t)). O(1) per token."""
    wx_t, R, b, state, lead, H, NH, DH, out = _prepare(wx_t, R, b, state, forget_gate, step=True)
    h, state = _step(wx_t, R, b, state, forget_gate)
    return h.to(out), state  # the state stays in the compute dtype


def block_step(wx_t, R, b, state, forget_gate: str):
    """``slstm_step`` for ``SLSTMBlock.step``: the state's tensors and shapes are checked, nothing else (the
    block builds wx, R and b itself). Returns h and the state in the compute dtype."""
    return _step(*_block_inputs(wx_t, R, b, state, values=False, step=True), forget_gate)


def _step(wx_t, R, b, state, forget_gate):
    lead, H = wx_t.shape[:-2], wx_t.shape[-1]
    NH, DH = R.shape[1], R.shape[-1]
    if state is None:
        state = slstm_zero_state(lead, H, dtype=wx_t.dtype, device=wx_t.device)
    h, c, n, m = state
    m = _empty_memory_m(n, m)
    # recurrent contribution, block-diagonal over heads: pre_g[head j] += h[head j] @ R[g, j]
    hh = h.reshape(*lead, 1, NH, 1, DH)
    rec = (hh @ R).reshape(*lead, 4, H)  # (..., 4, NH, 1, DH) -> (..., 4, H)
    pre = wx_t + rec + b  # W x_t + R h_{t-1} + b
    i_pre, f_pre, z_pre, o_pre = pre.unbind(-2)
    log_f = log_forget_gate(f_pre, forget_gate)  # eq. 13 in log space
    m_new = torch.maximum(log_f + m, i_pre).detach()  # eq. 15 (no gradient through m: App. A.2)
    i_s = torch.exp(i_pre - m_new)  # i' (eq. 16)
    f_s = torch.exp(log_f + m - m_new)  # f' (eq. 17)
    c = f_s * c + i_s * torch.tanh(z_pre)  # eq. 8, z = tanh(z̃) (eq. 11)
    n = f_s * n + i_s  # eq. 9
    h = torch.sigmoid(o_pre) * c / n  # eq. 10: h = o · c/n, o = σ(õ) (eq. 14)
    return h, (h, c, n, m_new)


# ----------------------------------------------------------------------------------------------------------------
def slstm_recurrent(wx, R, b, state=None, forget_gate: str = "sigmoid"):
    """sLSTM over a sequence. wx (..., S, 4, H); R (4, NH, DH, DH); b (4, H); state (h, c, n, m) or None.

    Returns ``(h (..., S, H), (h_last, c_last, n_last, m_last))``; passing the last state to the next call
    continues the sequence exactly. Differentiable (hand-written backward through time inside an autograd
    Function) with respect to wx, R, b and the initial h, c, n.
    """
    wx, R, b, state, lead, H, NH, DH, out = _prepare(wx, R, b, state, forget_gate, step=False)
    h, state = _recurrent(wx, R, b, state, forget_gate)
    # h in the inputs' dtype; the state in the compute dtype (a memory carried on is not rounded to half)
    return h.to(out), state


def block_recurrent(wx, R, b, state, forget_gate: str):
    """``slstm_recurrent`` for ``SLSTMBlock.forward``: a given state is checked (tensors, shapes and possible
    values), the inputs are not (the block builds them). Returns h and the state in the compute dtype."""
    return _recurrent(*_block_inputs(wx, R, b, state, values=True, step=False), forget_gate)


def _recurrent(wx, R, b, state, forget_gate):
    *lead, S, _, H = wx.shape
    NH, DH = R.shape[1], R.shape[-1]
    N = math.prod(lead)
    if state is None:
        state = slstm_zero_state(lead, H, dtype=wx.dtype, device=wx.device)
    # internal layout (S, NH, N, 4·DH): one contiguous slab per step for the batched matmul over heads
    x = (wx.reshape(N, S, 4, NH, DH) + b.reshape(4, NH, DH)).permute(1, 3, 0, 2, 4).reshape(S, NH, N, 4 * DH)
    Rf = R.permute(1, 2, 0, 3).reshape(NH, DH, 4 * DH)  # (NH, DH_in, 4·DH_out): the four gates side by side
    h0, c0, n0, m0 = (s.reshape(N, NH, DH).transpose(0, 1) for s in state)
    m0 = _empty_memory_m(n0, m0)
    hs, c, n, m = _SLSTMScan.apply(x.contiguous(), Rf, h0, c0, n0, m0, forget_gate == "sigmoid")
    h_out = hs.permute(2, 0, 1, 3).reshape(*lead, S, H)  # (S, NH, N, DH) -> (..., S, H)
    back = lambda t: t.transpose(0, 1).reshape(*lead, H)  # noqa: E731
    return h_out, (h_out[..., -1, :], back(c), back(n), back(m))


def _scan_forward(x, Rf, h, c, n, m, sigmoid_forget: bool):
    """The forward loop; returns all pre-activations and states needed by the backward pass."""
    S, NH, N, G = x.shape
    DH = G // 4
    pres = torch.empty_like(x)
    hs, cs, ns, ms = [], [], [], []
    for t in range(S):
        pre = torch.baddbmm(x[t], h, Rf, out=pres[t])  # W x_t + b + R h_{t-1}, all gates in one matmul
        i_p, f_p, z_p, o_p = pre.view(NH, N, 4, DH).unbind(2)
        log_f = F.logsigmoid(f_p) if sigmoid_forget else f_p  # eq. 13 in log space
        lfm = log_f + m
        m = torch.maximum(lfm, i_p)  # eq. 15
        i_s = torch.exp(i_p - m)  # eq. 16
        f_s = torch.exp(lfm - m)  # eq. 17
        c = torch.addcmul(f_s * c, i_s, torch.tanh(z_p))  # eq. 8
        n = torch.addcmul(i_s, f_s, n)  # eq. 9
        h = torch.sigmoid(o_p) * c / n  # eq. 10, eq. 14
        hs.append(h)
        cs.append(c)
        ns.append(n)
        ms.append(m)
    return pres, torch.stack(hs), torch.stack(cs), torch.stack(ns), torch.stack(ms)


class _SLSTMScan(torch.autograd.Function):
    """x (S, NH, N, 4·DH) = W x + b; Rf (NH, DH, 4·DH); h0, c0, n0, m0 (NH, N, DH)."""

    @staticmethod
    def forward(ctx, x, Rf, h0, c0, n0, m0, sigmoid_forget):
        with torch.no_grad():
            pres, hs, cs, ns, ms = _scan_forward(x, Rf, h0, c0, n0, m0, sigmoid_forget)
        ctx.save_for_backward(Rf, h0, c0, n0, m0, pres, hs, cs, ns, ms)
        ctx.sigmoid_forget = sigmoid_forget
        m_last = ms[-1].clone()
        ctx.mark_non_differentiable(m_last)
        return hs, cs[-1].clone(), ns[-1].clone(), m_last

    @staticmethod
    def backward(ctx, d_hs, d_c_last, d_n_last, _d_m_last):
        Rf, h0, c0, n0, m0, pres, hs, cs, ns, ms = ctx.saved_tensors
        S, NH, N, G = pres.shape
        DH = G // 4
        with torch.no_grad():
            # --- every factor that does not involve the incoming gradient, for all steps at once
            p = pres.view(S, NH, N, 4, DH)
            i_p, f_p, z_p, o_p = p.unbind(3)
            m_prev = torch.cat([m0[None], ms[:-1]])
            c_prev = torch.cat([c0[None], cs[:-1]])
            n_prev = torch.cat([n0[None], ns[:-1]])
            log_f = F.logsigmoid(f_p) if ctx.sigmoid_forget else f_p
            i_s = torch.exp(i_p - ms)  # i'
            f_s = torch.exp(log_f + m_prev - ms)  # f' (0 on a first step from m = -inf)
            z = torch.tanh(z_p)
            o = torch.sigmoid(o_p)
            dlogf = torch.sigmoid(-f_p) if ctx.sigmoid_forget else torch.ones_like(f_p)  # d logσ(x)/dx = σ(-x)
            inv_n = 1.0 / ns
            o_n = o * inv_n  # ∂h/∂c = o/n
            h_n = hs * inv_n  # -∂h/∂n = o c/n²
            zero = torch.zeros_like(z)
            # dpre = dc·P + dn·Q + dh·E  (gate order i, f, z, o), chain rule through eq. 8-17
            P = torch.stack([z * i_s, c_prev * f_s * dlogf, i_s * (1 - z * z), zero], dim=3)
            Q = torch.stack([i_s, n_prev * f_s * dlogf, zero, zero], dim=3)
            E = torch.stack([zero, zero, zero, cs * inv_n * o * (1 - o)], dim=3)
            del i_p, f_p, z_p, o_p, log_f, z, o, dlogf, inv_n, c_prev, n_prev, m_prev, i_s
            dpres = torch.empty_like(p)  # (S, NH, N, 4, DH)
            RfT = Rf.transpose(1, 2)
            d_hs = d_hs if d_hs is not None else torch.zeros_like(hs)
            dc = d_c_last if d_c_last is not None else torch.zeros_like(c0)
            dn = d_n_last if d_n_last is not None else torch.zeros_like(n0)
            dh_rec = torch.zeros_like(h0)
            # --- backward through time: about ten small ops per step
            for t in range(S - 1, -1, -1):
                dh = d_hs[t] + dh_rec
                dc = torch.addcmul(dc, dh, o_n[t])
                dn = torch.addcmul(dn, dh, h_n[t], value=-1.0)
                dp = dpres[t]
                torch.mul(P[t], dc.unsqueeze(2), out=dp)
                dp.addcmul_(Q[t], dn.unsqueeze(2)).addcmul_(E[t], dh.unsqueeze(2))
                dh_rec = torch.bmm(dp.view(NH, N, G), RfT)  # through R h_{t-1}
                dc = dc * f_s[t]
                dn = dn * f_s[t]
            # --- the weight gradient in one matmul over all steps: dR = Σ_t h_{t-1}ᵀ dpre_t
            h_prev = torch.cat([h0[None], hs[:-1]])  # (S, NH, N, DH)
            dRf = torch.bmm(h_prev.permute(1, 3, 0, 2).reshape(NH, DH, S * N),
                            dpres.view(S, NH, N, G).permute(1, 0, 2, 3).reshape(NH, S * N, G))
            # m_0 enters only through f'_1 = exp(log f_1 + m_0 - m_1): dm_0 = dc_0·c_0 + dn_0·n_0 (dc_0 = dc_1·f'_1)
            dm0 = dc * c0 + dn * n0 if ctx.needs_input_grad[5] else None
        return dpres.view(S, NH, N, G), dRf, dh_rec, dc, dn, dm0, None
