/* cypher's JACK process callback, in C: it runs without Python's lock.
 *
 * A Python callback must take the GIL every cycle; when another thread holds it (the
 * writer, the recogniser, a garbage collection) the cycle is late and JACK counts an
 * xrun. This callback only copies, as the Python one did:
 *   - input samples into a ring, stamped with JACK frame time (missed cycles -> silence);
 *   - MIDI events (up to 3 bytes: clock, transport, notes) into a ring of stamped events;
 *   - the sum of scheduled clips, each from an absolute frame, into the output.
 * Memory is owned by Python (numpy arrays) and handed over by pointer. A clip slot is
 * two records and an index: Python fills the spare record and publishes it by storing
 * the index; a sequence number around each publish lets the callback notice (and read
 * again) the rare read that two quick publishes overlapped, so it always uses a whole
 * record. The callback counts cycles, so Python frees a replaced clip only after the
 * cycle that might have read it.
 *
 * Built by setup.py as plugin_host/_rtjack*.so and loaded with ctypes. JACK's few
 * functions are declared here and resolved from the libjack the process has loaded,
 * so building needs only a C compiler, not JACK's headers.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint32_t jack_nframes_t;
typedef struct _jack_client jack_client_t;
typedef struct _jack_port jack_port_t;
typedef struct {
    jack_nframes_t time;
    size_t size;
    unsigned char *buffer;
} jack_midi_event_t;

extern int jack_set_process_callback(jack_client_t *, int (*)(jack_nframes_t, void *), void *);
extern void *jack_port_get_buffer(jack_port_t *, jack_nframes_t);
extern jack_nframes_t jack_last_frame_time(const jack_client_t *);
extern jack_nframes_t jack_frames_since_cycle_start(const jack_client_t *);
extern uint32_t jack_midi_get_event_count(void *);
extern int jack_midi_event_get(jack_midi_event_t *, void *, uint32_t);

#define N_SLOTS 32

typedef struct {
    int64_t start; /* JACK frame of the clip's first sample */
    int64_t len;   /* 0: nothing to play */
    const float *data;
} clip_t;

typedef struct {
    clip_t rec[2];
    int32_t cur;  /* which record is live; written by Python, read by the callback */
    uint32_t seq; /* odd while Python publishes: a read that saw it change is read again */
} slot_t;

typedef struct {
    jack_client_t *client;
    jack_port_t *in, *out, *midi; /* midi may be NULL */
    /* input ring */
    float *ring;
    int64_t ring_cap;
    int64_t written;     /* samples ever written (published at the end of the cycle) */
    int64_t first_frame; /* JACK frame of sample 0; -1 until the first cycle */
    int64_t gaps;
    /* MIDI ring: events of up to 3 bytes */
    int64_t *midi_frame;
    uint8_t *midi_bytes; /* 4 per event: length, then the bytes */
    int64_t midi_cap;
    int64_t midi_written;
    int64_t midi_dropped; /* longer events (sysex) or a full ring */
    int64_t midi_read;    /* written by Python: how far it has read */
    /* output */
    slot_t slots[N_SLOTS];
    int64_t cycles;
    int64_t late_starts; /* cycles this callback began after half the period had gone */
    int64_t slow_cycles; /* cycles in which its own work took more than half the period */
    int64_t base; /* this cycle's first frame, on 64 bits (JACK's 32-bit frame time wraps after ~25 h at 48 kHz) */
} rt_state;

/* A 32-bit JACK frame time on the 64-bit count that `ref` is on: the nearest such frame. */
static int64_t extend_frame(int64_t ref, jack_nframes_t frame)
{
    int32_t delta = (int32_t)(frame - (uint32_t)ref);
    return ref + delta;
}

static void ring_put(rt_state *s, const float *x, int64_t n)
{
    int64_t cap = s->ring_cap, i = s->written % cap, k = n < cap - i ? n : cap - i;
    if (x) {
        memcpy(s->ring + i, x, (size_t)k * sizeof(float));
        if (k < n) memcpy(s->ring, x + k, (size_t)(n - k) * sizeof(float));
    } else {
        memset(s->ring + i, 0, (size_t)k * sizeof(float));
        if (k < n) memset(s->ring, 0, (size_t)(n - k) * sizeof(float));
    }
}

static int process(jack_nframes_t nframes, void *arg)
{
    rt_state *s = (rt_state *)arg;
    jack_nframes_t began = jack_frames_since_cycle_start(s->client); /* for xrun attribution */
    int64_t base = extend_frame(s->base, jack_last_frame_time(s->client)), n = nframes;
    __atomic_store_n(&s->base, base, __ATOMIC_RELEASE);

    /* input */
    const float *in = (const float *)jack_port_get_buffer(s->in, nframes);
    int64_t written = s->written;
    if (s->first_frame < 0) s->first_frame = base - written;
    int64_t missed = base - (s->first_frame + written);
    if (missed > 0) { /* cycles this client did not run: silence, so sample i stays frame first + i */
        s->gaps++;
        int64_t z = missed < s->ring_cap ? missed : s->ring_cap;
        ring_put(s, NULL, z);
        written += missed;
        s->written = written;
    }
    ring_put(s, in, n < s->ring_cap ? n : s->ring_cap);

    /* MIDI in */
    if (s->midi) {
        void *mb = jack_port_get_buffer(s->midi, nframes);
        uint32_t count = jack_midi_get_event_count(mb);
        int64_t w = s->midi_written, r = __atomic_load_n(&s->midi_read, __ATOMIC_ACQUIRE);
        for (uint32_t e = 0; e < count; e++) {
            jack_midi_event_t ev;
            if (jack_midi_event_get(&ev, mb, e) != 0) continue;
            if (ev.size == 0 || ev.size > 3 || w - r >= s->midi_cap) {
                s->midi_dropped++;
                continue;
            }
            int64_t i = w % s->midi_cap;
            s->midi_frame[i] = base + ev.time;
            s->midi_bytes[4 * i] = (uint8_t)ev.size;
            memcpy(s->midi_bytes + 4 * i + 1, ev.buffer, ev.size);
            w++;
        }
        __atomic_store_n(&s->midi_written, w, __ATOMIC_RELEASE);
    }

    /* output: the sum of the clips that fall in [base, base + n) */
    float *out = (float *)jack_port_get_buffer(s->out, nframes);
    memset(out, 0, (size_t)n * sizeof(float));
    for (int k = 0; k < N_SLOTS; k++) {
        slot_t *sl = &s->slots[k];
        clip_t c = {0, 0, NULL};
        for (int tries = 0; tries < 8; tries++) {
            uint32_t seq = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
            if (seq & 1u) continue;
            int32_t cur = __atomic_load_n(&sl->cur, __ATOMIC_ACQUIRE);
            clip_t r = sl->rec[cur];
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            if (__atomic_load_n(&sl->seq, __ATOMIC_RELAXED) == seq) {
                c = r;
                break;
            }
        }
        if (c.len <= 0 || c.start >= base + n || c.start + c.len <= base) continue;
        int64_t a = c.start > base ? c.start - base : 0;
        int64_t off = base > c.start ? base - c.start : 0;
        int64_t m = n - a < c.len - off ? n - a : c.len - off;
        const float *src = c.data + off;
        float *dst = out + a;
        for (int64_t j = 0; j < m; j++) dst[j] += src[j];
    }
    /* published last: frames before first_frame + written are done with, output included */
    __atomic_store_n(&s->written, written + n, __ATOMIC_RELEASE);
    jack_nframes_t ended = jack_frames_since_cycle_start(s->client);
    if (2 * began > nframes) __atomic_store_n(&s->late_starts, s->late_starts + 1, __ATOMIC_RELAXED);
    if (2 * (ended - began) > nframes) __atomic_store_n(&s->slow_cycles, s->slow_cycles + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&s->cycles, s->cycles + 1, __ATOMIC_RELEASE);
    return 0;
}

/* Python side ------------------------------------------------------------------------- */

size_t rt_state_size(void) { return sizeof(rt_state); }

int rt_attach(rt_state *s, jack_client_t *client, jack_port_t *in, jack_port_t *out, jack_port_t *midi,
              float *ring, int64_t ring_cap, int64_t *midi_frame, uint8_t *midi_bytes, int64_t midi_cap)
{
    memset(s, 0, sizeof(*s));
    s->client = client;
    s->base = (int64_t)jack_last_frame_time(client); /* JACK's count since the server started */
    s->in = in;
    s->out = out;
    s->midi = midi;
    s->ring = ring;
    s->ring_cap = ring_cap;
    s->first_frame = -1;
    s->midi_frame = midi_frame;
    s->midi_bytes = midi_bytes;
    s->midi_cap = midi_cap;
    return jack_set_process_callback(client, process, s); /* before jack_activate */
}

/* Publish a clip in slot k (len 0 empties it). Only Python calls this, from one thread. */
void rt_slot_set(rt_state *s, int k, int64_t start, int64_t len, const float *data)
{
    if (k < 0 || k >= N_SLOTS) return;
    slot_t *sl = &s->slots[k];
    int32_t spare = 1 - sl->cur;
    __atomic_store_n(&sl->seq, sl->seq + 1, __ATOMIC_RELEASE); /* odd: publishing */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    sl->rec[spare].start = start;
    sl->rec[spare].len = len;
    sl->rec[spare].data = data;
    __atomic_store_n(&sl->cur, spare, __ATOMIC_RELEASE);
    __atomic_store_n(&sl->seq, sl->seq + 1, __ATOMIC_RELEASE); /* even: done */
}

/* The current 32-bit frame time (jack_frame_time) on the callback's 64-bit count. */
int64_t rt_extend(rt_state *s, uint32_t frame) { return extend_frame(__atomic_load_n(&s->base, __ATOMIC_ACQUIRE), frame); }
int64_t rt_written(rt_state *s) { return __atomic_load_n(&s->written, __ATOMIC_ACQUIRE); }
int64_t rt_first_frame(rt_state *s) { return __atomic_load_n(&s->first_frame, __ATOMIC_ACQUIRE); }
int64_t rt_gaps(rt_state *s) { return __atomic_load_n(&s->gaps, __ATOMIC_RELAXED); }
int64_t rt_late_starts(rt_state *s) { return __atomic_load_n(&s->late_starts, __ATOMIC_RELAXED); }
int64_t rt_slow_cycles(rt_state *s) { return __atomic_load_n(&s->slow_cycles, __ATOMIC_RELAXED); }
int64_t rt_cycles(rt_state *s) { return __atomic_load_n(&s->cycles, __ATOMIC_ACQUIRE); }
int64_t rt_midi_written(rt_state *s) { return __atomic_load_n(&s->midi_written, __ATOMIC_ACQUIRE); }
int64_t rt_midi_dropped(rt_state *s) { return __atomic_load_n(&s->midi_dropped, __ATOMIC_RELAXED); }
void rt_midi_consumed(rt_state *s, int64_t upto) { __atomic_store_n(&s->midi_read, upto, __ATOMIC_RELEASE); }
