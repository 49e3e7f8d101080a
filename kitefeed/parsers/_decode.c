/*
 * Walk and decode one Kite binary message into kitefeed tick records.
 *
 * A message is a big-endian u16 packet count followed by packets, each behind its
 * big-endian u16 length. Each prefix gives the offset of the next one, so the walk is
 * sequential; in Python it costs about 100 ns per packet, and numpy needs about 20
 * calls of 1 us each per packet kind, which dominates small and mixed messages. Here a
 * full packet takes tens of nanoseconds.
 *
 * The record layout is TICK_DTYPE (kitefeed/parsers/dtype.py). This file hard-codes its
 * field offsets; the module exports them as LAYOUT and decoder.py checks them against
 * the dtype at import, so a change to the dtype fails loudly instead of writing garbage.
 * Values follow the plain twin in reference.py: prices are u32 / divisor in double
 * precision, change is ((last - close) * 100) / close or 0.0, times are epoch seconds
 * times 1e9 or NaT for 0. Bytes are read one by one, so the host byte order and
 * alignment do not matter; fields are written with memcpy for the same reason.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#define RECORD_SIZE 272
#define DEPTH_LEVELS 5

#define OFF_RECV_TIME 0
#define OFF_EXCHANGE_TIMESTAMP 8
#define OFF_LAST_TRADE_TIME 16
#define OFF_LAST_PRICE 24
#define OFF_AVERAGE_TRADED_PRICE 32
#define OFF_OPEN 40
#define OFF_HIGH 48
#define OFF_LOW 56
#define OFF_CLOSE 64
#define OFF_CHANGE 72
#define OFF_NET_CHANGE 80
#define OFF_BID_PRICE 88
#define OFF_ASK_PRICE 128
#define OFF_INSTRUMENT_TOKEN 168
#define OFF_LAST_TRADED_QUANTITY 172
#define OFF_VOLUME_TRADED 176
#define OFF_TOTAL_BUY_QUANTITY 180
#define OFF_TOTAL_SELL_QUANTITY 184
#define OFF_OI 188
#define OFF_OI_DAY_HIGH 192
#define OFF_OI_DAY_LOW 196
#define OFF_BID_QUANTITY 200
#define OFF_ASK_QUANTITY 220
#define OFF_BID_ORDERS 240
#define OFF_ASK_ORDERS 250
#define OFF_KEY_INDEX 260
#define OFF_KIND 262
#define OFF_MODE 263
#define OFF_SEGMENT 264
#define OFF_TRADABLE 265
#define OFF_CONNECTION_INDEX 266

/* PacketKind and Mode values of dtype.py. */
enum { KIND_LTP = 1, KIND_INDEX_QUOTE = 2, KIND_INDEX_FULL = 3, KIND_QUOTE = 4, KIND_FULL = 5 };
enum { MODE_LTP = 1, MODE_QUOTE = 2, MODE_FULL = 3 };

#define INDEX_SEGMENT 9
#define NAT INT64_MIN

static const char *const FIELD_NAMES[] = {
    "recv_time", "exchange_timestamp", "last_trade_time", "last_price", "average_traded_price",
    "open", "high", "low", "close", "change", "net_change", "bid_price", "ask_price",
    "instrument_token", "last_traded_quantity", "volume_traded", "total_buy_quantity",
    "total_sell_quantity", "oi", "oi_day_high", "oi_day_low", "bid_quantity", "ask_quantity",
    "bid_orders", "ask_orders", "key_index", "kind", "mode", "segment", "tradable", "connection_index",
};
static const int FIELD_OFFSETS[] = {
    OFF_RECV_TIME, OFF_EXCHANGE_TIMESTAMP, OFF_LAST_TRADE_TIME, OFF_LAST_PRICE, OFF_AVERAGE_TRADED_PRICE,
    OFF_OPEN, OFF_HIGH, OFF_LOW, OFF_CLOSE, OFF_CHANGE, OFF_NET_CHANGE, OFF_BID_PRICE, OFF_ASK_PRICE,
    OFF_INSTRUMENT_TOKEN, OFF_LAST_TRADED_QUANTITY, OFF_VOLUME_TRADED, OFF_TOTAL_BUY_QUANTITY,
    OFF_TOTAL_SELL_QUANTITY, OFF_OI, OFF_OI_DAY_HIGH, OFF_OI_DAY_LOW, OFF_BID_QUANTITY, OFF_ASK_QUANTITY,
    OFF_BID_ORDERS, OFF_ASK_ORDERS, OFF_KEY_INDEX, OFF_KIND, OFF_MODE, OFF_SEGMENT, OFF_TRADABLE,
    OFF_CONNECTION_INDEX,
};
#define FIELD_COUNT ((int)(sizeof(FIELD_OFFSETS) / sizeof(FIELD_OFFSETS[0])))

static inline uint32_t read_u32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint16_t read_u16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static inline void put_f64(unsigned char *record, int offset, double value) {
    memcpy(record + offset, &value, sizeof value);
}

static inline void put_u32(unsigned char *record, int offset, uint32_t value) {
    memcpy(record + offset, &value, sizeof value);
}

static inline void put_u16(unsigned char *record, int offset, uint16_t value) {
    memcpy(record + offset, &value, sizeof value);
}

static inline void put_time(unsigned char *record, int offset, uint32_t seconds) {
    int64_t ns = seconds == 0 ? NAT : (int64_t)seconds * 1000000000LL;
    memcpy(record + offset, &ns, sizeof ns);
}

static inline double segment_divisor(unsigned segment) {
    if (segment == 3) {
        return 10000000.0;
    }
    if (segment == 6 || segment == 12) {
        return 10000.0;
    }
    return 100.0;
}

static inline int kind_of_length(Py_ssize_t length) {
    switch (length) {
    case 8: return KIND_LTP;
    case 28: return KIND_INDEX_QUOTE;
    case 32: return KIND_INDEX_FULL;
    case 44: return KIND_QUOTE;
    case 184: return KIND_FULL;
    default: return 0;
    }
}

/* A record with every field absent: NaN prices, NaT times, zero integers and padding. */
static unsigned char blank_record[RECORD_SIZE];

static void init_blank_record(void) {
    memset(blank_record, 0, sizeof blank_record);
    int64_t nat = NAT;
    memcpy(blank_record + OFF_EXCHANGE_TIMESTAMP, &nat, sizeof nat);
    memcpy(blank_record + OFF_LAST_TRADE_TIME, &nat, sizeof nat);
    for (int offset = OFF_LAST_PRICE; offset < OFF_INSTRUMENT_TOKEN; offset += 8) {
        put_f64(blank_record, offset, NAN);
    }
}

static void set_change(unsigned char *record, double last_price, double close) {
    put_f64(record, OFF_CHANGE, close == 0 ? 0.0 : ((last_price - close) * 100) / close);
}

/* Fill `record` from one complete packet of a known kind; the record starts blank. */
static void decode_packet(const unsigned char *packet, int kind, unsigned char *record) {
    static const unsigned char modes[] = {0, MODE_LTP, MODE_QUOTE, MODE_FULL, MODE_QUOTE, MODE_FULL};
    uint32_t token = read_u32(packet);
    unsigned segment = token & 0xFF;
    double divisor = segment_divisor(segment);
    double last_price = read_u32(packet + 4) / divisor;

    put_u32(record, OFF_INSTRUMENT_TOKEN, token);
    record[OFF_SEGMENT] = (unsigned char)segment;
    record[OFF_TRADABLE] = segment != INDEX_SEGMENT;
    record[OFF_KIND] = (unsigned char)kind;
    record[OFF_MODE] = modes[kind];
    put_f64(record, OFF_LAST_PRICE, last_price);
    if (kind == KIND_LTP) {
        return;
    }

    if (kind == KIND_INDEX_QUOTE || kind == KIND_INDEX_FULL) {
        double close = read_u32(packet + 20) / divisor;
        put_f64(record, OFF_HIGH, read_u32(packet + 8) / divisor);
        put_f64(record, OFF_LOW, read_u32(packet + 12) / divisor);
        put_f64(record, OFF_OPEN, read_u32(packet + 16) / divisor);
        put_f64(record, OFF_CLOSE, close);
        set_change(record, last_price, close);
        put_f64(record, OFF_NET_CHANGE, (int32_t)read_u32(packet + 24) / divisor);
        if (kind == KIND_INDEX_FULL) {
            put_time(record, OFF_EXCHANGE_TIMESTAMP, read_u32(packet + 28));
        }
        return;
    }

    double close = read_u32(packet + 40) / divisor;
    put_u32(record, OFF_LAST_TRADED_QUANTITY, read_u32(packet + 8));
    put_f64(record, OFF_AVERAGE_TRADED_PRICE, read_u32(packet + 12) / divisor);
    put_u32(record, OFF_VOLUME_TRADED, read_u32(packet + 16));
    put_u32(record, OFF_TOTAL_BUY_QUANTITY, read_u32(packet + 20));
    put_u32(record, OFF_TOTAL_SELL_QUANTITY, read_u32(packet + 24));
    put_f64(record, OFF_OPEN, read_u32(packet + 28) / divisor);
    put_f64(record, OFF_HIGH, read_u32(packet + 32) / divisor);
    put_f64(record, OFF_LOW, read_u32(packet + 36) / divisor);
    put_f64(record, OFF_CLOSE, close);
    set_change(record, last_price, close);
    if (kind == KIND_QUOTE) {
        return;
    }

    put_time(record, OFF_LAST_TRADE_TIME, read_u32(packet + 44));
    put_u32(record, OFF_OI, read_u32(packet + 48));
    put_u32(record, OFF_OI_DAY_HIGH, read_u32(packet + 52));
    put_u32(record, OFF_OI_DAY_LOW, read_u32(packet + 56));
    put_time(record, OFF_EXCHANGE_TIMESTAMP, read_u32(packet + 60));
    for (int level = 0; level < 2 * DEPTH_LEVELS; level++) {
        const unsigned char *entry = packet + 64 + 12 * level;
        int column = level % DEPTH_LEVELS;
        int bid = level < DEPTH_LEVELS;
        put_u32(record, (bid ? OFF_BID_QUANTITY : OFF_ASK_QUANTITY) + 4 * column, read_u32(entry));
        put_f64(record, (bid ? OFF_BID_PRICE : OFF_ASK_PRICE) + 8 * column, read_u32(entry + 4) / divisor);
        put_u16(record, (bid ? OFF_BID_ORDERS : OFF_ASK_ORDERS) + 2 * column, read_u16(entry + 8));
    }
}

/*
 * decode(message, out, recv_time_ns, key_index, connection_index)
 *     -> (written, packets, short, truncated, unknown_length, missing)
 *
 * `out` is a writable C-contiguous buffer of records. Raises ValueError when a tick
 * would not fit in it; the records written up to then stay written.
 */
static PyObject *decode(PyObject *module, PyObject *args) {
    Py_buffer message, out;
    long long recv_time_ns;
    unsigned int key_index, connection_index;
    if (!PyArg_ParseTuple(args, "y*w*LII", &message, &out, &recv_time_ns, &key_index, &connection_index)) {
        return NULL;
    }

    const unsigned char *bytes = message.buf;
    Py_ssize_t size = message.len;
    Py_ssize_t capacity = out.len / RECORD_SIZE;
    Py_ssize_t count = size >= 2 ? read_u16(bytes) : 0;
    Py_ssize_t written = 0, packets = 0, short_packets = 0, truncated = 0, unknown = 0;
    Py_ssize_t position = 2;
    int64_t recv = recv_time_ns;
    uint16_t key = (uint16_t)key_index;
    PyObject *result = NULL;

    for (; packets < count && position + 2 <= size; packets++) {
        Py_ssize_t declared = read_u16(bytes + position);
        Py_ssize_t start = position + 2;
        Py_ssize_t present = size - start < declared ? size - start : declared;
        int kind = kind_of_length(declared);
        position = start + declared;
        if (present < 4) {
            short_packets++;
        } else if (present < declared) {
            truncated++;
        } else if (kind == 0) {
            unknown++;
        } else if (written == capacity) {
            PyErr_Format(PyExc_ValueError, "invalid out: %zd records are too few for the ticks of this message", capacity);
            goto done;
        } else {
            unsigned char *record = (unsigned char *)out.buf + written * RECORD_SIZE;
            memcpy(record, blank_record, RECORD_SIZE);
            memcpy(record + OFF_RECV_TIME, &recv, sizeof recv);
            memcpy(record + OFF_KEY_INDEX, &key, sizeof key);
            record[OFF_CONNECTION_INDEX] = (unsigned char)connection_index;
            decode_packet(bytes + start, kind, record);
            written++;
        }
    }
    result = Py_BuildValue("nnnnnn", written, packets, short_packets, truncated, unknown, count - packets);

done:
    PyBuffer_Release(&message);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef decode_methods[] = {
    {"decode", decode, METH_VARARGS, "Walk and decode one Kite binary message into tick records."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef decode_module = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_decode",
    .m_doc = "Walk and decode Kite binary messages into kitefeed tick records.",
    .m_size = -1,
    .m_methods = decode_methods,
};

PyMODINIT_FUNC PyInit__decode(void) {
    init_blank_record();
    PyObject *module = PyModule_Create(&decode_module);
    if (module == NULL) {
        return NULL;
    }
    PyObject *layout = PyDict_New();
    if (layout == NULL || PyModule_AddObject(module, "LAYOUT", layout) < 0) {
        Py_XDECREF(layout);
        Py_DECREF(module);
        return NULL;
    }
    for (int i = 0; i < FIELD_COUNT; i++) {
        PyObject *offset = PyLong_FromLong(FIELD_OFFSETS[i]);
        if (offset == NULL || PyDict_SetItemString(layout, FIELD_NAMES[i], offset) < 0) {
            Py_XDECREF(offset);
            Py_DECREF(module);
            return NULL;
        }
        Py_DECREF(offset);
    }
    if (PyModule_AddIntConstant(module, "RECORD_SIZE", RECORD_SIZE) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
