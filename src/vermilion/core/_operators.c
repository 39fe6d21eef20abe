/* Compiled hot loops of the vermilion engine.
 *
 * Plain CPython extension working on buffers (no numpy headers), so that it
 * builds with nothing but a C compiler and imports in microseconds: numba
 * alone costs 0.6 s to import, more than the whole cold-start budget.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>

static const int NBR_Y[8] = {-1, -1, -1, 0, 0, 1, 1, 1};
static const int NBR_X[8] = {-1, 0, 1, -1, 1, -1, 0, 1};

/* monotonic_project(morph, h, w, py, px, order_dy, order_dx, weights, S[, slack])
 *
 * morph: float32 (h, w), C-contiguous, modified in place.
 * order_dy/order_dx: int32 offsets from the peak sorted by distance (the
 *   first entry is the peak itself).
 * weights: float32 (2S+1, 2S+1, 8) weights of the 8 neighbours of every
 *   offset (0 for neighbours that are not closer to the peak).
 * Every pixel, visited from the peak outwards, is lowered to a reference
 * value of its already visited closer neighbours when brighter than it: their
 * weighted mean, moved the fraction slack (0 to 1, default 0) of the way to
 * their maximum.
 */
static PyObject *monotonic_project(PyObject *self, PyObject *args) {
    Py_buffer morph, ody, odx, wts;
    int h, w, py, px, S;
    float slack = 0.0f;
    if (!PyArg_ParseTuple(args, "w*iiiiy*y*y*i|f", &morph, &h, &w, &py, &px, &ody, &odx, &wts,
                          &S, &slack))
        return NULL;
    PyObject *result = NULL;
    const Py_ssize_t G = 2 * (Py_ssize_t)S + 1;
    if (morph.len != (Py_ssize_t)h * w * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "morph buffer does not match (h, w) float32");
        goto done;
    }
    if (ody.len != odx.len || ody.len % sizeof(int) != 0) {
        PyErr_SetString(PyExc_ValueError, "order buffers differ in length");
        goto done;
    }
    if (wts.len != G * G * 8 * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "weights buffer does not match (2S+1, 2S+1, 8)");
        goto done;
    }
    if (py < 0 || py >= h || px < 0 || px >= w) {
        PyErr_SetString(PyExc_ValueError, "peak outside the morphology box");
        goto done;
    }
    {
        const Py_ssize_t dy_max = (py > h - 1 - py) ? py : h - 1 - py;
        const Py_ssize_t dx_max = (px > w - 1 - px) ? px : w - 1 - px;
        if (dy_max > S || dx_max > S) {
            PyErr_SetString(PyExc_ValueError, "order table too small for this box");
            goto done;
        }
        const Py_ssize_t maxd2 = dy_max * dy_max + dx_max * dx_max;
        float *m = (float *)morph.buf;
        const int *dy = (const int *)ody.buf;
        const int *dx = (const int *)odx.buf;
        const float *wt = (const float *)wts.buf;
        const Py_ssize_t n = ody.len / (Py_ssize_t)sizeof(int);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 1; k < n; k++) {
            const int ddy = dy[k], ddx = dx[k];
            if ((Py_ssize_t)ddy * ddy + (Py_ssize_t)ddx * ddx > maxd2) break;
            const int y = py + ddy, x = px + ddx;
            if (y < 0 || y >= h || x < 0 || x >= w) continue;
            const float *wk = wt + ((ddy + S) * G + (ddx + S)) * 8;
            float ref, wsum = 0.0f, vmax = -1e30f, mean = 0.0f;
            for (int j = 0; j < 8; j++) {
                if (wk[j] > 0.0f) {
                    const int ny = y + NBR_Y[j], nx = x + NBR_X[j];
                    if (ny >= 0 && ny < h && nx >= 0 && nx < w) {
                        const float v = m[ny * w + nx];
                        if (v > vmax) vmax = v;
                        mean += wk[j] * v;
                        wsum += wk[j];
                    }
                }
            }
            if (wsum > 0.0f) {
                mean /= wsum;
                ref = mean + slack * (vmax - mean);
                if (m[y * w + x] > ref) m[y * w + x] = ref;
            }
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyBuffer_Release(&morph);
    PyBuffer_Release(&ody);
    PyBuffer_Release(&odx);
    PyBuffer_Release(&wts);
    return result;
}

/* Flood fill (8-connected) from `start` over pixels of state 2, marking them `mark`;
 * returns the sum of `m` over the piece. */
static double fill_piece(unsigned char *state, Py_ssize_t *stack, const float *m, int h, int w,
                         Py_ssize_t start, unsigned char mark) {
    double total = 0.0;
    Py_ssize_t top = 0;
    state[start] = mark;
    stack[top++] = start;
    while (top > 0) {
        const Py_ssize_t i = stack[--top];
        total += m[i];
        const int y = (int)(i / w), x = (int)(i % w);
        for (int j = 0; j < 8; j++) {
            const int ny = y + NBR_Y[j], nx = x + NBR_X[j];
            if (ny < 0 || ny >= h || nx < 0 || nx >= w) continue;
            const Py_ssize_t k = (Py_ssize_t)ny * w + nx;
            if (state[k] == 2) {
                state[k] = mark;
                stack[top++] = k;
            }
        }
    }
    return total;
}

/* prune_thin(morph, h, w, py, px) -> number of pixels zeroed
 *
 * morph: float32 (h, w), C-contiguous, modified in place. A non-zero pixel is "thick"
 * when it lies in a 2 x 2 block of non-zero pixels. Every non-zero pixel that is not
 * thick (lines and spurs one pixel wide), or thick but not 8-connected through thick
 * pixels to the peak (py, px), is set to 0. When the peak itself is not thick, the
 * thick piece holding the most flux is kept instead; with no thick pixel at all,
 * nothing changes (as `vermilion.core.operators.thin_pixels`).
 */
static PyObject *prune_thin(PyObject *self, PyObject *args) {
    Py_buffer morph;
    int h, w, py, px;
    if (!PyArg_ParseTuple(args, "w*iiii", &morph, &h, &w, &py, &px)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t zeroed = 0;
    if (morph.len != (Py_ssize_t)h * w * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "morph buffer does not match (h, w) float32");
        goto done;
    }
    if (py < 0 || py >= h || px < 0 || px >= w) {
        PyErr_SetString(PyExc_ValueError, "peak outside the morphology box");
        goto done;
    }
    {
        const Py_ssize_t n = (Py_ssize_t)h * w;
        float *m = (float *)morph.buf;
        /* 0: zero, 1: non-zero, 2: thick, 3: the piece kept, 4: another thick piece */
        unsigned char *state = (unsigned char *)calloc((size_t)n, 1);
        Py_ssize_t *stack = (Py_ssize_t *)malloc((size_t)n * sizeof(Py_ssize_t));
        if (state == NULL || stack == NULL) {
            free(state);
            free(stack);
            PyErr_NoMemory();
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) state[i] = m[i] > 0.0f;
        for (int y = 0; y + 1 < h; y++) {
            for (int x = 0; x + 1 < w; x++) {
                const Py_ssize_t i = (Py_ssize_t)y * w + x;
                if (state[i] && state[i + 1] && state[i + w] && state[i + w + 1]) {
                    state[i] = state[i + 1] = state[i + w] = state[i + w + 1] = 2;
                }
            }
        }
        const Py_ssize_t start = (Py_ssize_t)py * w + px;
        Py_ssize_t keep = -1;
        if (state[start] == 2) {
            keep = start;
        } else {
            /* the peak is thin: the thick piece with the most flux (first found on ties) */
            double best = -1.0;
            for (Py_ssize_t i = 0; i < n; i++) {
                if (state[i] == 2) {
                    const double total = fill_piece(state, stack, m, h, w, i, 4);
                    if (total > best) {
                        best = total;
                        keep = i;
                    }
                }
            }
            for (Py_ssize_t i = 0; i < n; i++) {
                if (state[i] == 4) state[i] = 2;
            }
        }
        if (keep >= 0) {
            fill_piece(state, stack, m, h, w, keep, 3);
            for (Py_ssize_t i = 0; i < n; i++) {
                if (state[i] && state[i] != 3) {
                    m[i] = 0.0f;
                    zeroed++;
                }
            }
        }
        Py_END_ALLOW_THREADS
        free(state);
        free(stack);
    }
    result = PyLong_FromSsize_t(zeroed);
done:
    PyBuffer_Release(&morph);
    return result;
}

static PyMethodDef methods[] = {
    {"monotonic_project", monotonic_project, METH_VARARGS,
     "Weighted monotonicity projection of a float32 morphology about its peak (in place)."},
    {"prune_thin", prune_thin, METH_VARARGS,
     "Zero the one-pixel-wide and cut-off parts of a float32 morphology (in place)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_operators",
                                    "Compiled operators of the vermilion engine.", -1, methods};

PyMODINIT_FUNC PyInit__operators(void) { return PyModule_Create(&module); }
