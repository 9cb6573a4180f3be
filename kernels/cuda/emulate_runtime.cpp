// The scheduler of graphc's CUDA emulator (see emulate.h): runs a launch's blocks in order, the
// threads of a block as fibers that switch at synchronization points, and reports misuse.
// Compiled once per machine (cached) and linked into every emulated module.
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

#include "emulate.h"

namespace {

enum State { READY, AT_BLOCK, AT_WARP, DONE };

struct Fiber {
    ucontext_t context;
    dim3 tid;
    State state;
    int line;
    unsigned generation;   // the warp barrier generation this fiber waits at
};

const int MAX_THREADS = 1024;
const size_t STACK_BYTES = 256 * 1024;

Fiber fibers[MAX_THREADS];
char* stacks = nullptr;
int n_threads = 0;
int current = 0;
ucontext_t scheduler;
dim3 grid, block, bidx;
void (*body)(void*) = nullptr;
void* closure = nullptr;
bool failed = false;
char message[600];
unsigned long long exchange_slots[2][MAX_THREADS];
unsigned warp_generation[MAX_THREADS / 32];

void entry() {
    body(closure);
    fibers[current].state = DONE;
}   // returns to `scheduler` through uc_link

void park(State state, int line) {
    Fiber& f = fibers[current];
    f.state = state;
    f.line = line;
    swapcontext(&f.context, &scheduler);
}

void describe_block(char* out, size_t size) {
    snprintf(out, size, "block (%u, %u, %u)", bidx.x, bidx.y, bidx.z);
}

// One pass over the waiting fibers: release a warp or the block when it may go on. Returns
// whether anything was released; sets `failed` on misuse.
bool release() {
    char where[64];
    describe_block(where, sizeof where);
    bool released = false;
    for (int w = 0; w * 32 < n_threads; ++w) {
        int first = w * 32, last = first + 32 < n_threads ? first + 32 : n_threads;
        int waiting = 0, done = 0, line = -1;
        for (int t = first; t < last; ++t) {
            if (fibers[t].state == AT_WARP) {
                if (line >= 0 && fibers[t].line != line) {
                    snprintf(message, sizeof message,
                             "%s, warp %d: lanes wait at warp synchronizations on different lines (%d and %d)",
                             where, w, line, fibers[t].line);
                    failed = true;
                    return false;
                }
                line = fibers[t].line;
                ++waiting;
            } else if (fibers[t].state == DONE) {
                ++done;
            }
        }
        if (waiting && waiting + done == last - first && done) {
            snprintf(message, sizeof message,
                     "%s, warp %d: a warp synchronization (line %d) waits for lanes that have exited", where, w, line);
            failed = true;
            return false;
        }
        if (waiting == last - first) {
            ++warp_generation[w];
            for (int t = first; t < last; ++t) fibers[t].state = READY;
            released = true;
        }
    }
    if (released) return true;
    int at_block = 0, done = 0, line = -1, other_line = -1;
    for (int t = 0; t < n_threads; ++t) {
        if (fibers[t].state == AT_BLOCK) {
            if (line < 0) line = fibers[t].line;
            else if (fibers[t].line != line) other_line = fibers[t].line;
            ++at_block;
        } else if (fibers[t].state == DONE) {
            ++done;
        }
    }
    if (at_block && other_line >= 0) {
        snprintf(message, sizeof message, "%s: __syncthreads() reached on different lines (%d and %d)", where, line,
                 other_line);
        failed = true;
        return false;
    }
    if (at_block && at_block + done == n_threads && done) {
        snprintf(message, sizeof message,
                 "%s: __syncthreads() (line %d) reached by %d of %d threads; the others exited", where, line, at_block,
                 n_threads);
        failed = true;
        return false;
    }
    if (at_block == n_threads) {
        for (int t = 0; t < n_threads; ++t) fibers[t].state = READY;
        return true;
    }
    if (done < n_threads) {
        snprintf(message, sizeof message,
                 "%s: deadlock: threads wait at different synchronization points (e.g. __syncthreads() on line %d "
                 "while a warp synchronization waits)", where, line);
        failed = true;
    }
    return false;
}

int run_block() {
    for (int t = 0; t < n_threads; ++t) {
        Fiber& f = fibers[t];
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = stacks + (size_t)t * STACK_BYTES;
        f.context.uc_stack.ss_size = STACK_BYTES;
        f.context.uc_link = &scheduler;
        makecontext(&f.context, entry, 0);
        f.state = READY;
        f.tid = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
    }
    for (int w = 0; w * 32 < n_threads; ++w) warp_generation[w] = 0;
    for (;;) {
        bool ran = false;
        for (int t = 0; t < n_threads && !failed; ++t) {
            if (fibers[t].state != READY) continue;
            current = t;
            swapcontext(&scheduler, &fibers[t].context);
            ran = true;
        }
        if (failed) return -1;
        if (ran) continue;
        if (!release()) return failed ? -1 : 0;
    }
}

}  // namespace

namespace gc_emu {
const dim3& thread_idx() { return fibers[current].tid; }
const dim3& block_idx() { return bidx; }
const dim3& block_dim() { return block; }
const dim3& grid_dim() { return grid; }
int lane() { return current % 32; }

void sync_block(int line) { park(AT_BLOCK, line); }
void sync_warp(int line) { park(AT_WARP, line); }

unsigned long long exchange(unsigned long long bits, int src, int line) {
    unsigned generation = warp_generation[current / 32];
    exchange_slots[generation & 1][current] = bits;
    park(AT_WARP, line);
    int base = current - current % 32;
    int index = base + src;
    if (src < 0 || src >= 32 || index >= n_threads) index = current;
    return exchange_slots[generation & 1][index];
}

void fail(const char* text) {
    snprintf(message, sizeof message, "%s", text);
    failed = true;
    swapcontext(&fibers[current].context, &scheduler);
}

int launch(dim3 g, dim3 b, void (*fn)(void*), void* data) {
    failed = false;
    message[0] = 0;
    unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
    if (threads == 0 || threads > MAX_THREADS || g.x == 0 || g.y == 0 || g.z == 0) {
        snprintf(message, sizeof message, "invalid launch: grid (%u, %u, %u), block (%u, %u, %u)", g.x, g.y, g.z, b.x,
                 b.y, b.z);
        return -1;
    }
    if (!stacks) stacks = static_cast<char*>(malloc(MAX_THREADS * STACK_BYTES));
    grid = g;
    block = b;
    n_threads = (int)threads;
    body = fn;
    closure = data;
    for (unsigned z = 0; z < g.z; ++z)
        for (unsigned y = 0; y < g.y; ++y)
            for (unsigned x = 0; x < g.x; ++x) {
                bidx = dim3(x, y, z);
                if (run_block() != 0) return -1;
            }
    return 0;
}
}  // namespace gc_emu

extern "C" const char* gc_emu_last_error() { return message; }
