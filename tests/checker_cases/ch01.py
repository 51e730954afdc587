"""Good and wrong answers for the checkers of chapter 1 (xlstm_edu.exercises.ch01)."""

import numpy as np
from checker_cases import Case


def _sig(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _cell(wx_t, R, b, h, c, *, R_T=False, order=(0, 1, 2, 3), tanh_c=True):
    rec = np.einsum("...k,ghk->...gh", h, R) if R_T else np.einsum("...h,ghk->...gk", h, R)
    pre = wx_t + rec + b
    i, f, z, o = (pre[..., order[j], :] for j in range(4))
    i, f, z, o = _sig(i), _sig(f), np.tanh(z), _sig(o)
    c_new = f * c + i * z
    h_new = o * (np.tanh(c_new) if tanh_c else c_new)
    return h_new, c_new, (i, f, z, o, c_new, c, h)


def _recurrent(**kw):
    def lstm_recurrent(wx, R, b, state=None):
        *lead, S, _, H = wx.shape
        h, c = (np.zeros((*lead, H)), np.zeros((*lead, H))) if state is None else state
        hs = []
        for t in range(S):
            h, c, _ = _cell(wx[..., t, :, :], R, b, h, c, **kw)
            hs.append(h)
        return np.stack(hs, axis=-2), (h, c)
    return lstm_recurrent


def _cell_backward(*, tanh_prime=True, R_T=True, carousel=True):
    def lstm_cell_backward(dh, dc, cache, R):
        i, f, z, o, c, c_prev, h_prev = cache
        tc = np.tanh(c)
        do = dh * tc
        dc = dc + dh * o * ((1 - tc ** 2) if tanh_prime else 1.0)
        dpre = np.stack([dc * z * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - z ** 2), do * o * (1 - o)],
                        axis=-2)
        dh_prev = np.einsum("...gk,ghk->...h", dpre, R) if R_T else np.einsum("...gk,gkh->...h", dpre, R)
        return dpre, dh_prev, dc * f if carousel else dc
    return lstm_cell_backward


def _backward(*, carry_h=True, carry_c=True, dR_T=False):
    cell_bw = _cell_backward()

    def lstm_backward(dhs, caches, R):
        dh_next, dc_next = np.zeros_like(dhs[..., 0, :]), np.zeros_like(dhs[..., 0, :])
        dwx = np.zeros(dhs.shape[:-1] + (4, dhs.shape[-1]))
        dR = np.zeros_like(R)
        for t in reversed(range(len(caches))):
            dpre, dh_prev, dc_prev = cell_bw(dhs[..., t, :] + (dh_next if carry_h else 0), dc_next, caches[t], R)
            dh_next = dh_prev
            dc_next = dc_prev if carry_c else np.zeros_like(dc_prev)
            dwx[..., t, :, :] = dpre
            hp = caches[t][-1].reshape(-1, R.shape[1])
            g = np.einsum("nh,ngk->ghk", hp, dpre.reshape(-1, 4, R.shape[2]))
            dR += g.transpose(0, 2, 1) if dR_T else g
        return dwx, dR, dwx.reshape(-1, *dwx.shape[-2:]).sum(axis=0)
    return lstm_backward


CASES = {
    "1.1": Case(good=(_recurrent(),), wrong={
        "R used as in the paper (R[g] @ h instead of h @ R[g])": (_recurrent(R_T=True),),
        "gate order (i, f, o, z)": (_recurrent(order=(0, 1, 3, 2)),),
        "h = o c without the tanh": (_recurrent(tanh_c=False),),
        "returns h only": (lambda wx, R, b, state=None: _recurrent()(wx, R, b, state)[0],),
    }),
    "1.2": Case(good=(_cell_backward(),), wrong={
        "the tanh' of the cell state forgotten": (_cell_backward(tanh_prime=False),),
        "dh_prev through R[g] instead of R[g].T": (_cell_backward(R_T=False),),
        "dc_prev not multiplied by f": (_cell_backward(carousel=False),),
    }),
    "1.3": Case(good=(_backward(),), wrong={
        "dh_next not passed back": (_backward(carry_h=False),),
        "dc_next not passed back": (_backward(carry_c=False),),
        "dR transposed": (_backward(dR_T=True),),
    }),
    "1.4": Case(good=(lambda f: np.prod(f, axis=0),), wrong={
        "the last gate to the power S (constant gates assumed)": (lambda f: f[-1] ** len(f),),
        "the mean gate to the power S": (lambda f: f.mean(axis=0) ** len(f),),
        "product over units instead of time": (lambda f: np.prod(f, axis=1),),
        "sum instead of product": (lambda f: np.sum(f, axis=0),),
    }),
}
