// The CUDA names our kernels use, given their meaning on a CPU, so the .cu sources run unchanged in tests.
//
// Each CUDA thread is a fiber (its own stack, switched to by a few instructions). The threads of a block run cooperatively on one
// OS thread: a fiber runs until it reaches __syncthreads or a warp collective (the shuffles), the only points
// where CUDA promises anything about other threads, and then yields. Which fiber runs next is the schedule
// (in order, reversed or a seeded random order each round); blocks run one after another, in order, reversed or
// shuffled. A kernel that is right for every interleaving CUDA allows gives bit-identical outputs under each.
//
// What a mistake looks like here:
//   - shared memory is filled with NaN bytes before each block: reading what no thread wrote shows as NaN;
//   - a warp collective whose lanes are not all there (some left, some wait at __syncthreads), a thread leaving
//     while others wait at __syncthreads, or no thread able to run: an error naming the block and threads;
//   - a read or write past the end of an array faults on the guard page after it (the Python side places
//     arrays there); the fault is caught and reported with the address, block and thread.
// Floating point: denormals flush to zero, as CuPy compiles kernels with -ftz=true.
#pragma once

#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <algorithm>
#include <random>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

// Kernels and device functions are inline, so their static locals (the __shared__ variables) all get the same
// kind of section: one section can then hold every one of them. (A __shared__ variable at file scope would not
// fit in it: the compiler says "section type conflict".)
#ifndef __global__  // the Python side redefines it to find the entry points
#define __global__ inline
#endif
#define __device__ inline
#define __host__
#define __forceinline__ __attribute__((always_inline))
#define __restrict__ __restrict
// every __shared__ variable lands in one section, so a block's shared memory can be poisoned in one memset
#define __shared__ __attribute__((section("cuda_cpu_shared"))) static
extern "C" char __start_cuda_cpu_shared[], __stop_cuda_cpu_shared[];
// the section exists even in a file without __shared__
__attribute__((used)) inline char* cuda_cpu_shared_anchor() {
    __shared__ __attribute__((used)) char anchor;
    return &anchor;
}

struct uint3 {
    unsigned int x, y, z;
};
typedef uint3 dim3;

namespace cuda_cpu {

enum State { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_COLLECTIVE, DONE };

// --- fibers: start one on its own stack, switch between a fiber and the scheduler ---------------------------------
#if defined(__x86_64__)
// Saves the callee-saved registers on the current stack, stores the stack pointer in *from, continues on `to`.
// (ucontext's swapcontext does the same plus a system call for the signal mask: ten times slower.)
extern "C" void cuda_cpu_switch(void** from, void* to);
asm(R"(
    .text
    .p2align 4
    .type cuda_cpu_switch, @function
cuda_cpu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cuda_cpu_switch, .-cuda_cpu_switch
)");
struct Context {
    void* stack_pointer;
};
static void fiber_main();
// a stack that cuda_cpu_switch "returns" into fiber_main from: six zero registers, then fiber_main's address
static void prepare(Context* context, char* stack, size_t size) {
    void** top = (void**)(((uintptr_t)(stack + size)) & ~(uintptr_t)15);
    *--top = nullptr;  // fiber_main's own return address slot: it never returns; keeps the ABI's alignment
    *--top = (void*)fiber_main;
    for (int i = 0; i < 6; ++i) *--top = nullptr;
    context->stack_pointer = top;
}
static void switch_context(Context* from, Context* to) { cuda_cpu_switch(&from->stack_pointer, to->stack_pointer); }
#else
struct Context {
    ucontext_t context;
};
static void fiber_main();
static void prepare(Context* context, char* stack, size_t size) {
    getcontext(&context->context);
    context->context.uc_stack.ss_sp = stack;
    context->context.uc_stack.ss_size = size;
    context->context.uc_link = nullptr;
    makecontext(&context->context, fiber_main, 0);
}
static void switch_context(Context* from, Context* to) { swapcontext(&from->context, &to->context); }
#endif

struct Fiber {
    Context context;
    uint3 index;
    int linear;         // threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)
    State state;
    unsigned int mask;  // the lanes the warp collective it waits at names
    long long collectives;  // warp collectives passed: picks the exchange buffer
};

static const int STACK_BYTES = 256 * 1024;

static uint3 block_index, block_dim, grid_dim;
static Fiber* current = nullptr;
static std::vector<Fiber> fibers;
static std::vector<char*> stacks;
static Context scheduler;
static int live = 0, at_block_barrier = 0, exited = 0;
static unsigned long long exchange[1024 / 32][2][32];  // per warp, two buffers of 32 lanes' shuffled values
static void (*entry)(void**) = nullptr;
static void** entry_args = nullptr;
static char* error_text = nullptr;
static int error_size = 0;
static sigjmp_buf fault_jump;
static volatile sig_atomic_t faulted = 0;
static void* fault_address = nullptr;

__attribute__((format(printf, 1, 2))) static void fail(const char* format, ...) {
    if (error_text[0]) return;  // the first error is the one to report
    va_list args;
    va_start(args, format);
    int used = snprintf(error_text, error_size, "block (%u, %u, %u): ", block_index.x, block_index.y, block_index.z);
    vsnprintf(error_text + used, error_size - used, format, args);
    va_end(args);
}

static int warp_of(const Fiber& f) { return f.linear / 32; }
static int lane_of(const Fiber& f) { return f.linear % 32; }
static int warp_size(int warp) { return std::min(32, (int)fibers.size() - 32 * warp); }

static void yield() { switch_context(&current->context, &scheduler); }

static void release_block_barrier() {
    for (Fiber& f : fibers)
        if (f.state == AT_BLOCK_BARRIER) f.state = RUNNABLE;
    at_block_barrier = 0;
}

static void syncthreads() {
    if (exited) {  // CUDA leaves a __syncthreads that not every thread reaches undefined
        fail("thread %d reached __syncthreads after %d threads of its block left the kernel", current->linear, exited);
        return;
    }
    current->state = AT_BLOCK_BARRIER;
    if (++at_block_barrier == live) {
        release_block_barrier();  // the last to arrive lets everyone go and runs on
        return;
    }
    yield();
}

// A warp collective: every lane named in mask must arrive (with the same mask) before any lane goes on.
// Returns false (after reporting) when that cannot happen.
static bool warp_barrier(unsigned int mask) {
    Fiber& self = *current;
    const int warp = warp_of(self), first = 32 * warp;
    if (!(mask >> lane_of(self) & 1u)) {
        fail("thread %d: a warp collective whose mask 0x%08x leaves out its own lane", self.linear, mask);
        return false;
    }
    self.state = AT_WARP_COLLECTIVE;
    self.mask = mask;
    bool everyone = true;
    for (int lane = 0; lane < 32; ++lane) {
        if (!(mask >> lane & 1u)) continue;
        if (lane >= warp_size(warp)) {
            fail("thread %d: warp collective with mask 0x%08x names lane %d, which the block does not have",
                 self.linear, mask, lane);
            return false;
        }
        const Fiber& other = fibers[first + lane];
        if (other.state == DONE) {
            fail("thread %d: warp collective waits on lane %d, which has left the kernel", self.linear, lane);
            return false;
        }
        if (other.state != AT_WARP_COLLECTIVE || other.collectives != self.collectives) everyone = false;
        else if (other.mask != mask) {
            fail("warp %d: lanes meet at a warp collective with different masks (0x%08x, 0x%08x)", warp, mask,
                 other.mask);
            return false;
        }
    }
    if (everyone) {
        for (int lane = 0; lane < 32; ++lane)
            if (mask >> lane & 1u) fibers[first + lane].state = RUNNABLE;
    } else {
        yield();
    }
    return true;
}

// Lane-to-lane exchange, the core of every __shfl*: write, meet, read. Two buffers alternate, so a lane that
// runs ahead to the next shuffle cannot overwrite a value a slower lane has still to read.
template <typename T>
static T shuffle(unsigned int mask, T value, int source_lane, int width) {
    static_assert(sizeof(T) <= sizeof(unsigned long long), "shuffled values are at most 8 bytes");
    Fiber& self = *current;
    const int warp = warp_of(self), lane = lane_of(self);
    unsigned long long* slots = exchange[warp][self.collectives & 1];
    memcpy(&slots[lane], &value, sizeof(T));
    if (!warp_barrier(mask)) return value;
    self.collectives++;
    const int segment_start = lane / width * width;
    if (source_lane < segment_start || source_lane >= segment_start + width) source_lane = lane;  // out of range
    if (!(mask >> source_lane & 1u)) {
        fail("thread %d: shuffle reads lane %d, outside mask 0x%08x", self.linear, source_lane, mask);
        return value;
    }
    T result;
    memcpy(&result, &slots[source_lane], sizeof(T));
    return result;
}

static void fiber_main() {
    entry(entry_args);
    Fiber& self = *current;
    const int linear = self.linear;
    self.state = DONE;
    --live;
    ++exited;
    if (at_block_barrier) fail("thread %d left the kernel while %d threads wait at __syncthreads", linear, at_block_barrier);
    for (int lane = 0; lane < warp_size(warp_of(self)); ++lane) {
        const Fiber& other = fibers[32 * warp_of(self) + lane];
        if (other.state == AT_WARP_COLLECTIVE && (other.mask >> lane_of(self) & 1u))
            fail("thread %d left the kernel while lane %d waits for it at a warp collective", linear, lane);
    }
    switch_context(&self.context, &scheduler);  // never resumed
}

static void on_fault(int, siginfo_t* info, void*) {
    fault_address = info->si_addr;
    faulted = 1;
    siglongjmp(fault_jump, 1);
}

// Runs the block at block_index: all its threads from their start to their end.
static void run_block(const std::vector<int>& order_seed) {
    const int n_threads = block_dim.x * block_dim.y * block_dim.z;
    (void)cuda_cpu_shared_anchor();
    memset(__start_cuda_cpu_shared, 0xff, __stop_cuda_cpu_shared - __start_cuda_cpu_shared);  // NaN everywhere
    memset(exchange, 0xff, sizeof(exchange));
    live = n_threads;
    at_block_barrier = exited = 0;
    for (int t = 0; t < n_threads; ++t) {
        Fiber& f = fibers[t];
        f.linear = t;
        f.index = {t % block_dim.x, t / block_dim.x % block_dim.y, t / (block_dim.x * block_dim.y)};
        f.state = RUNNABLE;
        f.collectives = 0;
        prepare(&f.context, stacks[t], STACK_BYTES);
    }
    const int thread_order = order_seed[0];
    std::mt19937_64 random(order_seed[1] * 1000003ull + block_index.x * 7919ull + block_index.y * 104729ull);
    std::vector<int> order(n_threads);
    for (int t = 0; t < n_threads; ++t) order[t] = thread_order == 1 ? n_threads - 1 - t : t;
    while (live > 0 && !error_text[0]) {
        if (thread_order == 2) std::shuffle(order.begin(), order.end(), random);
        bool ran = false;
        for (int t : order) {
            if (fibers[t].state != RUNNABLE) continue;
            current = &fibers[t];
            switch_context(&scheduler, &current->context);
            ran = true;
            if (error_text[0]) return;
        }
        if (!ran) {
            int barrier = 0, collective = 0;
            for (const Fiber& f : fibers) {
                barrier += f.state == AT_BLOCK_BARRIER;
                collective += f.state == AT_WARP_COLLECTIVE;
            }
            fail("deadlock: %d threads wait at __syncthreads and %d at warp collectives, none can go on", barrier,
                 collective);
        }
    }
}

}  // namespace cuda_cpu

// order: thread order (0 in order, 1 reversed, 2 random), block order (same codes), seed
extern "C" __attribute__((visibility("default"))) int cuda_cpu_launch(void (*entry)(void**), void** args,
                                                                      const unsigned int* grid,
                                                                      const unsigned int* block, const int* order,
                                                                      const long long* blocks_to_run,
                                                                      long long n_blocks_to_run, char* error,
                                                                      int error_size) {
    using namespace cuda_cpu;
    cuda_cpu::entry = entry;
    entry_args = args;
    error_text = error;
    cuda_cpu::error_size = error_size;
    error[0] = 0;
    grid_dim = {grid[0], grid[1], grid[2]};
    block_dim = {block[0], block[1], block[2]};
    const int n_threads = block[0] * block[1] * block[2];
    fibers.assign(n_threads, Fiber());
    while ((int)stacks.size() < n_threads) stacks.push_back((char*)malloc(STACK_BYTES));

    std::vector<long long> blocks;
    if (blocks_to_run) blocks.assign(blocks_to_run, blocks_to_run + n_blocks_to_run);
    else
        for (long long b = 0; b < (long long)grid[0] * grid[1] * grid[2]; ++b) blocks.push_back(b);
    if (order[1] == 1) std::reverse(blocks.begin(), blocks.end());
    if (order[1] == 2) {
        std::mt19937_64 random(order[2]);
        std::shuffle(blocks.begin(), blocks.end(), random);
    }

#if defined(__x86_64__) || defined(__i386__)
    const unsigned int saved_csr = _mm_getcsr();
    _mm_setcsr(saved_csr | 0x8040);  // flush-to-zero and denormals-are-zero: -ftz=true
#endif
    static char alternate_stack[64 * 1024];
    stack_t signal_stack = {}, saved_stack;
    signal_stack.ss_sp = alternate_stack;
    signal_stack.ss_size = sizeof(alternate_stack);
    sigaltstack(&signal_stack, &saved_stack);
    struct sigaction on_segv = {}, saved_segv, saved_bus;
    on_segv.sa_sigaction = on_fault;
    on_segv.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &on_segv, &saved_segv);
    sigaction(SIGBUS, &on_segv, &saved_bus);
    faulted = 0;
    if (sigsetjmp(fault_jump, 1) == 0) {
        const std::vector<int> thread_order = {order[0], order[2]};
        for (long long b : blocks) {
            block_index = {(unsigned int)(b % grid[0]), (unsigned int)(b / grid[0] % grid[1]),
                           (unsigned int)(b / ((long long)grid[0] * grid[1]))};
            run_block(thread_order);
            if (error[0]) break;
        }
    } else {
        const Fiber* f = current;
        snprintf(error, error_size, "block (%u, %u, %u), thread (%u, %u, %u): memory fault at address %p",
                 block_index.x, block_index.y, block_index.z, f->index.x, f->index.y, f->index.z, fault_address);
    }
    sigaction(SIGSEGV, &saved_segv, nullptr);
    sigaction(SIGBUS, &saved_bus, nullptr);
    sigaltstack(&saved_stack, nullptr);
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(saved_csr);
#endif
    return error[0] ? 1 : 0;
}

// --- the CUDA built-ins ---------------------------------------------------------------------------------------------
#define threadIdx (cuda_cpu::current->index)
#define blockIdx (cuda_cpu::block_index)
#define blockDim (cuda_cpu::block_dim)
#define gridDim (cuda_cpu::grid_dim)
#define warpSize 32

static inline void __syncthreads() { cuda_cpu::syncthreads(); }
static inline void __syncwarp(unsigned int mask = 0xffffffffu) { cuda_cpu::warp_barrier(mask); }

template <typename T> static inline T __shfl_sync(unsigned int mask, T v, int lane, int width = 32) {
    return cuda_cpu::shuffle(mask, v, cuda_cpu::lane_of(*cuda_cpu::current) / width * width + lane % width, width);
}
template <typename T> static inline T __shfl_xor_sync(unsigned int mask, T v, int lane_mask, int width = 32) {
    return cuda_cpu::shuffle(mask, v, cuda_cpu::lane_of(*cuda_cpu::current) ^ lane_mask, width);
}
template <typename T> static inline T __shfl_down_sync(unsigned int mask, T v, unsigned int delta, int width = 32) {
    return cuda_cpu::shuffle(mask, v, cuda_cpu::lane_of(*cuda_cpu::current) + (int)delta, width);
}
template <typename T> static inline T __shfl_up_sync(unsigned int mask, T v, unsigned int delta, int width = 32) {
    return cuda_cpu::shuffle(mask, v, cuda_cpu::lane_of(*cuda_cpu::current) - (int)delta, width);
}

template <typename T> static inline T min(T a, T b) { return b < a ? b : a; }
template <typename T> static inline T max(T a, T b) { return a < b ? b : a; }

static inline float rsqrtf(float x) { return 1.f / sqrtf(x); }
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __int_as_float(int bits) { float f; memcpy(&f, &bits, 4); return f; }
static inline int __float_as_int(float f) { int bits; memcpy(&bits, &f, 4); return bits; }
static inline float __uint_as_float(unsigned int bits) { float f; memcpy(&f, &bits, 4); return f; }
static inline unsigned int __float_as_uint(float f) { unsigned int bits; memcpy(&bits, &f, 4); return bits; }

// what common.cuh's PTX cvt instructions do: float16 bits to float32 exactly, float32 to float16 rounding to nearest
static inline float cuda_cpu_half_to_float(unsigned short bits) { _Float16 h; memcpy(&h, &bits, 2); return (float)h; }
static inline unsigned short cuda_cpu_float_to_half(float x) {
    _Float16 h = (_Float16)x;
    unsigned short bits;
    memcpy(&bits, &h, 2);
    return bits;
}
