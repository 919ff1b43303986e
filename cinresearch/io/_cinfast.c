/*
 * Compiled reader for the children of a CIN census return written in the schema's element
 * order (see cinresearch/io/cin/native.py, which wraps it, and cin/polars_reader.py, which
 * accepts exactly the same text with polars). One pass over the bytes checks that every element
 * is well-formed and sits where the XSD sequence puts it, and appends each record's leaves to
 * Arrow-style string columns (offsets + data + validity). Anything else -- an entity, comment,
 * attribute, another element order, a '>' or control character in a value, non-ASCII
 * whitespace at the edge of a value -- makes parse() return None, and the caller reads the
 * batch another way. No identifier is ever printed or kept outside the returned buffers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable columns ------------------------------------------------------------------ */
typedef struct {
    char *data;
    int64_t len, cap;
    int64_t *off; /* n + 1 offsets */
    int64_t n, ncap;
} StrCol;

typedef struct {
    int64_t *v;
    int64_t n, cap;
} IntCol;

static int grow(void **ptr, int64_t *cap, int64_t need, size_t item) {
    if (need <= *cap) return 0;
    int64_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    void *p = realloc(*ptr, (size_t)c * item);
    if (!p) return -1;
    *ptr = p;
    *cap = c;
    return 0;
}

static int str_push(StrCol *c, const char *p, int64_t len, int valid, int upper) {
    if (grow((void **)&c->off, &c->ncap, c->n + 2, sizeof(int64_t))) return -1;
    if (c->n == 0) c->off[0] = 0;
    if (grow((void **)&c->data, &c->cap, c->len + len + 1, 1)) return -1;
    if (valid) {
        if (upper) {
            for (int64_t i = 0; i < len; i++) {
                char ch = p[i];
                c->data[c->len + i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
            }
        } else {
            memcpy(c->data + c->len, p, (size_t)len);
        }
        c->len += len;
    }
    c->off[c->n + 1] = c->len;
    c->n += 1;
    return 0;
}

static int int_push(IntCol *c, int64_t v) {
    if (grow((void **)&c->v, &c->cap, c->n + 1, sizeof(int64_t))) return -1;
    c->v[c->n++] = v;
    return 0;
}

/* validity bytes live beside the offsets, grown with them */
typedef struct {
    StrCol s;
    uint8_t *valid;
    int64_t vcap;
} Col;

static int col_push(Col *c, const char *p, int64_t len, int valid, int upper) {
    if (grow((void **)&c->valid, &c->vcap, c->s.n + 1, 1)) return -1;
    c->valid[c->s.n] = (uint8_t)(valid != 0);
    return str_push(&c->s, p, len, valid, upper);
}

/* ---- output tables ------------------------------------------------------------------------ */
enum { C_ID, C_UPN, C_FORMER, C_UNKNOWN, C_BIRTH, C_EXPECTED, C_GENDER, C_SEX, C_DEATH,
       C_ETHNICITY, N_CHILD };
enum { E_REFERRAL, E_SOURCE, E_NEED, E_CLOSURE, E_REASON, E_ICPC, E_NFA, N_EPISODE };
enum { A_START, A_REVIEW, A_AUTH, N_ASSESSMENT };
enum { P_START, P_END, N_CINPLAN };
enum { S_START, S_TARGET, S_ICPC, S_NOTREQ, N_S47 };
enum { K_START, K_END, K_INITIAL, K_LATEST, K_PREVIOUS, N_CPP };

typedef struct {
    IntCol seq, line, n_dis, n_none;
    Col f[N_CHILD];
} ChildTable;
typedef struct { IntCol child, line; Col code; } DisTable;
typedef struct { IntCol child, seq, line; Col f[N_EPISODE]; } EpisodeTable;
typedef struct { IntCol child, episode, line, factor_off; Col f[N_ASSESSMENT]; Col factors; } AssessTable;
typedef struct { IntCol child, episode, line; Col f[N_CINPLAN]; } PlanTable;
typedef struct { IntCol child, episode, line; Col f[N_S47]; } S47Table;
typedef struct { IntCol child, episode, seq, line; Col f[N_CPP]; } CppTable;
typedef struct { IntCol child, episode, cpp, line; Col date; } ReviewTable;

typedef struct { const char *p; int64_t len; int set; } Slot;

typedef struct {
    const char *p, *end;
    int64_t line;
    int failed; /* 1 = declined (not this reader's text), 2 = out of memory */
    ChildTable children;
    DisTable dis;
    EpisodeTable episodes;
    AssessTable assessments;
    PlanTable plans;
    S47Table s47;
    CppTable cpps;
    ReviewTable reviews;
    int64_t n_dis_child, n_none_child;
    Slot child_slots[N_CHILD];
} Ctx;

/* ---- lexing --------------------------------------------------------------------------------- */
/* Longest run of text (a value, or whitespace between tags) this reader accepts. libxml2 refuses
 * a text node over 10,000,000 bytes unless XML_PARSE_HUGE is set (the loader never sets it), so
 * anything near that is left to lxml, which then reports the fault as it would for any reader. */
#define MAX_TEXT 1000000

/* Skip whitespace between tags; 0 if the run is longer than MAX_TEXT. */
static int skip_ws(Ctx *c) {
    const char *p = c->p, *end = c->end;
    while (p < end) {
        char ch = *p;
        if (ch == '\n') c->line++;
        else if (ch != ' ' && ch != '\t') break;
        p++;
    }
    int64_t run = p - c->p;
    c->p = p;
    return run <= MAX_TEXT;
}

static int name_char(unsigned char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

/* At '<': read an open tag. Returns name length (0 = not a plain open tag); *empty = '/>' form. */
static int64_t open_tag(Ctx *c, const char **name, int *empty) {
    const char *p = c->p + 1, *end = c->end;
    const char *start = p;
    while (p < end && name_char((unsigned char)*p)) p++;
    int64_t len = p - start;
    if (len == 0 || p >= end) return 0;
    if (*p == '>') {
        *empty = 0;
        c->p = p + 1;
    } else if (*p == '/' && p + 1 < end && p[1] == '>') {
        *empty = 1;
        c->p = p + 2;
    } else {
        return 0; /* attributes, whitespace in the tag, a prefix... */
    }
    *name = start;
    return len;
}

static int close_tag(Ctx *c, const char *name, int64_t len) {
    const char *p = c->p;
    if (c->end - p < len + 3 || p[0] != '<' || p[1] != '/' || memcmp(p + 2, name, (size_t)len) ||
        p[2 + len] != '>')
        return 0;
    c->p = p + len + 3;
    return 1;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates), or 0
 * if it is malformed or encodes U+FFFE / U+FFFF, which are not XML characters. */
static int utf8_length(const char *p, const char *end) {
    const unsigned char *u = (const unsigned char *)p;
    int64_t left = end - p;
    unsigned char b = u[0];
    int n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF) n = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else return 0;
    if (left < n || u[1] < lo || u[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if (u[i] < 0x80 || u[i] > 0xBF) return 0;
    if (b == 0xEF && u[1] == 0xBF && (u[2] == 0xBE || u[2] == 0xBF)) return 0;
    return n;
}

/* Leaf text up to '<': characters XML allows in text, minus '&' and '>' (handled elsewhere);
 * the only place non-ASCII bytes are accepted, so the only place UTF-8 is checked. */
static int leaf_text(Ctx *c, const char **start, int64_t *len) {
    const char *p = c->p, *end = c->end;
    const char *s = p;
    while (p < end) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '<') break;
        if (ch < 0x20) {
            if (ch == '\n') c->line++;
            else if (ch != '\t') return 0;
        } else if (ch == '&' || ch == '>') {
            return 0;
        } else if (ch >= 0x80) {
            int n = utf8_length(p, end);
            if (!n) return 0; /* invalid UTF-8, U+FFFE or U+FFFF */
            p += n;
            continue;
        }
        p++;
    }
    if (p >= end || p - s > MAX_TEXT) return 0;
    c->p = p;
    *start = s;
    *len = p - s;
    return 1;
}

/* Strip as Python's str.strip() would; refuse (0) if a non-ASCII byte sits at an edge. */
static int strip(const char **p, int64_t *len) {
    const char *s = *p;
    int64_t n = *len;
    while (n && (*s == ' ' || *s == '\t' || *s == '\n')) { s++; n--; }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n')) n--;
    if (n && (((unsigned char)s[0]) >= 0x80 || ((unsigned char)s[n - 1]) >= 0x80)) return 0;
    *p = s;
    *len = n;
    return 1;
}

static int ascii_only(const char *p, int64_t len) {
    for (int64_t i = 0; i < len; i++)
        if ((unsigned char)p[i] >= 0x80) return 0;
    return 1;
}

/* ---- schema-driven content parsing --------------------------------------------------------- */
typedef int (*BoxFn)(Ctx *, int64_t line, int empty);
typedef int (*LeafFn)(Ctx *, int64_t line, const char *value, int64_t len, int present);

typedef struct {
    const char *name;
    int64_t len;
    int repeat;  /* may appear several times in a row */
    int slot;    /* leaf stored in slots[slot] (-1: see leaf/box) */
    LeafFn leaf; /* repeated leaf handled by a callback */
    BoxFn box;   /* container */
} Item;

#define LEAF(n, s) {n, sizeof(n) - 1, 0, s, NULL, NULL}
#define LEAFS(n, fn) {n, sizeof(n) - 1, 1, -1, fn, NULL}
#define BOX(n, fn) {n, sizeof(n) - 1, 0, -1, NULL, fn}
#define BOXES(n, fn) {n, sizeof(n) - 1, 1, -1, NULL, fn}

static int decline(Ctx *c) {
    if (!c->failed) c->failed = 1;
    return 0;
}

/* Parse children of a container until its close tag, in `items` order. */
static int content(Ctx *c, const Item *items, int n, const char *close, int64_t close_len,
                   Slot *slots) {
    int pos = 0;
    for (;;) {
        if (!skip_ws(c)) return decline(c);
        if (c->p >= c->end || *c->p != '<') return decline(c);
        if (c->p + 1 < c->end && c->p[1] == '/')
            return close_tag(c, close, close_len) ? 1 : decline(c);
        int64_t line = c->line;
        const char *name;
        int empty;
        int64_t len = open_tag(c, &name, &empty);
        if (!len) return decline(c);
        int idx = -1;
        for (int i = pos; i < n; i++) {
            if (items[i].len == len && !memcmp(items[i].name, name, (size_t)len)) {
                idx = i;
                break;
            }
        }
        if (idx < 0) return decline(c);
        const Item *it = &items[idx];
        pos = it->repeat ? idx : idx + 1;
        if (it->box) {
            if (!it->box(c, line, empty)) return 0;
            continue;
        }
        const char *value = NULL;
        int64_t vlen = 0;
        if (!empty) {
            if (!leaf_text(c, &value, &vlen)) return decline(c);
            if (!close_tag(c, it->name, it->len)) return decline(c);
            if (!strip(&value, &vlen)) return decline(c);
        }
        if (it->leaf) {
            if (!it->leaf(c, line, value, vlen, !empty)) return 0;
        } else {
            slots[it->slot].p = value;
            slots[it->slot].len = vlen;
            slots[it->slot].set = vlen > 0;
        }
    }
}

#define CHECK(x) do { if ((x) < 0) { c->failed = 2; return 0; } } while (0)

static int push_slots(Ctx *c, Col *cols, Slot *slots, int n) {
    for (int i = 0; i < n; i++)
        CHECK(col_push(&cols[i], slots[i].p, slots[i].len, slots[i].set, 0));
    return 1;
}

/* -- leaves with rows of their own -- */
static int on_disability(Ctx *c, int64_t line, const char *v, int64_t len, int present) {
    (void)present;
    if (!ascii_only(v, len)) return decline(c); /* upper-casing beyond ASCII: leave to Python */
    c->n_dis_child++;
    if (len == 4 && (v[0] | 32) == 'n' && (v[1] | 32) == 'o' && (v[2] | 32) == 'n' &&
        (v[3] | 32) == 'e') {
        c->n_none_child++;
        return 1;
    }
    CHECK(int_push(&c->dis.child, c->children.seq.n + 1));
    CHECK(int_push(&c->dis.line, line));
    CHECK(col_push(&c->dis.code, v, len, len > 0, 1));
    return 1;
}

static int on_factor(Ctx *c, int64_t line, const char *v, int64_t len, int present) {
    (void)line;
    (void)present;
    if (!ascii_only(v, len)) return decline(c);
    CHECK(col_push(&c->assessments.factors, v, len, 1, 1)); /* "" stays "" as in Python */
    return 1;
}

static int on_review(Ctx *c, int64_t line, const char *v, int64_t len, int present) {
    (void)present;
    ReviewTable *t = &c->reviews;
    CHECK(int_push(&t->child, c->children.seq.n + 1));
    CHECK(int_push(&t->episode, c->episodes.seq.n));
    CHECK(int_push(&t->cpp, c->cpps.seq.n));
    CHECK(int_push(&t->line, line));
    CHECK(col_push(&t->date, v, len, len > 0, 0));
    return 1;
}

static const Item DISABILITY_ITEMS[] = {LEAFS("Disability", on_disability)};
static const Item FACTOR_ITEMS[] = {LEAFS("AssessmentFactors", on_factor)};
static const Item REVIEW_ITEMS[] = {LEAFS("CPPreviewDate", on_review)};

static int box_list(Ctx *c, int empty, const Item *items, const char *name, int64_t len) {
    if (empty) return 1;
    return content(c, items, 1, name, len, NULL);
}
static int on_disabilities(Ctx *c, int64_t line, int empty) {
    (void)line;
    return box_list(c, empty, DISABILITY_ITEMS, "Disabilities", 12);
}
static int on_factors(Ctx *c, int64_t line, int empty) {
    (void)line;
    return box_list(c, empty, FACTOR_ITEMS, "FactorsIdentifiedAtAssessment", 29);
}
static int on_reviews(Ctx *c, int64_t line, int empty) {
    (void)line;
    return box_list(c, empty, REVIEW_ITEMS, "Reviews", 7);
}

/* -- records -- */
static const Item IDENTIFIER_ITEMS[] = {
    LEAF("LAchildID", C_ID),       LEAF("UPN", C_UPN),
    LEAF("FormerUPN", C_FORMER),   LEAF("UPNunknown", C_UNKNOWN),
    LEAF("PersonBirthDate", C_BIRTH), LEAF("ExpectedPersonBirthDate", C_EXPECTED),
    LEAF("GenderCurrent", C_GENDER), LEAF("Sex", C_SEX),
    LEAF("PersonDeathDate", C_DEATH),
};
static const Item CHARACTERISTIC_ITEMS[] = {
    LEAF("Ethnicity", C_ETHNICITY),
    BOX("Disabilities", on_disabilities),
};

static int on_identifiers(Ctx *c, int64_t line, int empty) {
    (void)line;
    if (empty) return 1;
    return content(c, IDENTIFIER_ITEMS, 9, "ChildIdentifiers", 16, c->child_slots);
}
static int on_characteristics(Ctx *c, int64_t line, int empty) {
    (void)line;
    if (empty) return 1;
    return content(c, CHARACTERISTIC_ITEMS, 2, "ChildCharacteristics", 20, c->child_slots);
}

static const Item ASSESSMENT_ITEMS[] = {
    LEAF("AssessmentActualStartDate", A_START),
    LEAF("AssessmentInternalReviewDate", A_REVIEW),
    LEAF("AssessmentAuthorisationDate", A_AUTH),
    BOX("FactorsIdentifiedAtAssessment", on_factors),
};
static int on_assessment(Ctx *c, int64_t line, int empty) {
    Slot s[N_ASSESSMENT] = {{0}};
    AssessTable *t = &c->assessments;
    if (t->factor_off.n == 0) CHECK(int_push(&t->factor_off, 0));
    if (!empty && !content(c, ASSESSMENT_ITEMS, 4, "Assessments", 11, s)) return 0;
    CHECK(int_push(&t->child, c->children.seq.n + 1));
    CHECK(int_push(&t->episode, c->episodes.seq.n));
    CHECK(int_push(&t->line, line));
    CHECK(int_push(&t->factor_off, t->factors.s.n));
    return push_slots(c, t->f, s, N_ASSESSMENT);
}

static const Item CINPLAN_ITEMS[] = {LEAF("CINPlanStartDate", P_START), LEAF("CINPlanEndDate", P_END)};
static int on_cinplan(Ctx *c, int64_t line, int empty) {
    Slot s[N_CINPLAN] = {{0}};
    PlanTable *t = &c->plans;
    if (!empty && !content(c, CINPLAN_ITEMS, 2, "CINPlanDates", 12, s)) return 0;
    CHECK(int_push(&t->child, c->children.seq.n + 1));
    CHECK(int_push(&t->episode, c->episodes.seq.n));
    CHECK(int_push(&t->line, line));
    return push_slots(c, t->f, s, N_CINPLAN);
}

static const Item S47_ITEMS[] = {
    LEAF("S47ActualStartDate", S_START), LEAF("InitialCPCtarget", S_TARGET),
    LEAF("DateOfInitialCPC", S_ICPC),    LEAF("ICPCnotRequired", S_NOTREQ),
};
static int on_s47(Ctx *c, int64_t line, int empty) {
    Slot s[N_S47] = {{0}};
    S47Table *t = &c->s47;
    if (!empty && !content(c, S47_ITEMS, 4, "Section47", 9, s)) return 0;
    CHECK(int_push(&t->child, c->children.seq.n + 1));
    CHECK(int_push(&t->episode, c->episodes.seq.n));
    CHECK(int_push(&t->line, line));
    return push_slots(c, t->f, s, N_S47);
}

static const Item CPP_ITEMS[] = {
    LEAF("CPPstartDate", K_START),
    LEAF("CPPendDate", K_END),
    LEAF("InitialCategoryOfAbuse", K_INITIAL),
    LEAF("LatestCategoryOfAbuse", K_LATEST),
    LEAF("NumberOfPreviousCPP", K_PREVIOUS),
    BOX("Reviews", on_reviews),
};
static int on_cpp(Ctx *c, int64_t line, int empty) {
    Slot s[N_CPP] = {{0}};
    CppTable *t = &c->cpps;
    /* the plan's number is taken at its start tag, so its reviews carry it */
    CHECK(int_push(&t->seq, t->seq.n + 1));
    if (!empty && !content(c, CPP_ITEMS, 6, "ChildProtectionPlans", 20, s)) return 0;
    CHECK(int_push(&t->child, c->children.seq.n + 1));
    CHECK(int_push(&t->episode, c->episodes.seq.n));
    CHECK(int_push(&t->line, line));
    return push_slots(c, t->f, s, N_CPP);
}

static const Item EPISODE_ITEMS[] = {
    LEAF("CINreferralDate", E_REFERRAL),
    LEAF("ReferralSource", E_SOURCE),
    LEAF("PrimaryNeedCode", E_NEED),
    LEAF("CINclosureDate", E_CLOSURE),
    LEAF("ReasonForClosure", E_REASON),
    LEAF("DateOfInitialCPC", E_ICPC),
    BOXES("Assessments", on_assessment),
    BOXES("CINPlanDates", on_cinplan),
    BOXES("Section47", on_s47),
    LEAF("ReferralNFA", E_NFA),
    BOXES("ChildProtectionPlans", on_cpp),
};
static int on_episode(Ctx *c, int64_t line, int empty) {
    Slot s[N_EPISODE] = {{0}};
    EpisodeTable *t = &c->episodes;
    CHECK(int_push(&t->seq, t->seq.n + 1));
    if (!empty && !content(c, EPISODE_ITEMS, 11, "CINdetails", 10, s)) return 0;
    CHECK(int_push(&t->child, c->children.seq.n + 1));
    CHECK(int_push(&t->line, line));
    return push_slots(c, t->f, s, N_EPISODE);
}

static const Item CHILD_ITEMS[] = {
    BOX("ChildIdentifiers", on_identifiers),
    BOX("ChildCharacteristics", on_characteristics),
    BOXES("CINdetails", on_episode),
};

static int parse_all(Ctx *c) {
    for (;;) {
        if (!skip_ws(c)) return decline(c);
        if (c->p >= c->end) return 1;
        int64_t line = c->line;
        const char *name;
        int empty;
        if (*c->p != '<') return decline(c);
        int64_t len = open_tag(c, &name, &empty);
        if (len != 5 || memcmp(name, "Child", 5)) return decline(c);
        memset(c->child_slots, 0, sizeof c->child_slots);
        c->n_dis_child = c->n_none_child = 0;
        if (!empty && !content(c, CHILD_ITEMS, 3, "Child", 5, c->child_slots)) return 0;
        ChildTable *t = &c->children;
        CHECK(int_push(&t->seq, t->seq.n + 1));
        CHECK(int_push(&t->line, line));
        CHECK(int_push(&t->n_dis, c->n_dis_child));
        CHECK(int_push(&t->n_none, c->n_none_child));
        if (!push_slots(c, t->f, c->child_slots, N_CHILD)) return 0;
    }
}

/* ---- results to Python ---------------------------------------------------------------------- */
static PyObject *int_bytes(IntCol *c) {
    return PyBytes_FromStringAndSize((const char *)c->v, (Py_ssize_t)(c->n * sizeof(int64_t)));
}

static PyObject *col_tuple(Col *c) {
    /* (n, offsets int64 bytes, data bytes, validity bytes) */
    int64_t zero = 0;
    PyObject *off = c->s.n ? PyBytes_FromStringAndSize((const char *)c->s.off,
                                                       (Py_ssize_t)((c->s.n + 1) * sizeof(int64_t)))
                           : PyBytes_FromStringAndSize((const char *)&zero, sizeof zero);
    PyObject *data = PyBytes_FromStringAndSize(c->s.data ? c->s.data : "", (Py_ssize_t)c->s.len);
    PyObject *valid = PyBytes_FromStringAndSize(c->valid ? (const char *)c->valid : "",
                                                (Py_ssize_t)c->s.n);
    PyObject *out = Py_BuildValue("(LNNN)", (long long)c->s.n, off, data, valid);
    return out;
}

static void col_free(Col *c) {
    free(c->s.data);
    free(c->s.off);
    free(c->valid);
}
static void int_free(IntCol *c) { free(c->v); }

static int put(PyObject *d, const char *k, PyObject *v) {
    if (!v) return -1;
    int r = PyDict_SetItemString(d, k, v);
    Py_DECREF(v);
    return r;
}

static const char *CHILD_NAMES[N_CHILD] = {"la_child_id", "upn", "former_upn", "upn_unknown",
                                           "birth_date", "expected_birth_date", "gender_current",
                                           "sex_code", "death_date", "ethnicity"};
static const char *EPISODE_NAMES[N_EPISODE] = {"referral_date", "referral_source", "primary_need",
                                               "closure_date", "closure_reason", "icpc_date",
                                               "referral_nfa"};
static const char *ASSESSMENT_NAMES[N_ASSESSMENT] = {"assessment_start", "assessment_review",
                                                     "assessment_authorised"};
static const char *CINPLAN_NAMES[N_CINPLAN] = {"cin_plan_start", "cin_plan_end"};
static const char *S47_NAMES[N_S47] = {"s47_start", "icpc_target", "icpc_date",
                                       "icpc_not_required"};
static const char *CPP_NAMES[N_CPP] = {"cpp_start", "cpp_end", "initial_category",
                                       "latest_category", "previous_cpps"};

static PyObject *table(int nint, const char **int_names, IntCol **ints, int ncol,
                       const char **col_names, Col *cols) {
    PyObject *d = PyDict_New();
    if (!d) return NULL;
    for (int i = 0; i < nint; i++)
        if (put(d, int_names[i], int_bytes(ints[i]))) goto fail;
    for (int i = 0; i < ncol; i++)
        if (put(d, col_names[i], col_tuple(&cols[i]))) goto fail;
    return d;
fail:
    Py_DECREF(d);
    return NULL;
}

static void ctx_free(Ctx *c) {
    ChildTable *ch = &c->children;
    int_free(&ch->seq); int_free(&ch->line); int_free(&ch->n_dis); int_free(&ch->n_none);
    for (int i = 0; i < N_CHILD; i++) col_free(&ch->f[i]);
    int_free(&c->dis.child); int_free(&c->dis.line); col_free(&c->dis.code);
    EpisodeTable *e = &c->episodes;
    int_free(&e->child); int_free(&e->seq); int_free(&e->line);
    for (int i = 0; i < N_EPISODE; i++) col_free(&e->f[i]);
    AssessTable *a = &c->assessments;
    int_free(&a->child); int_free(&a->episode); int_free(&a->line); int_free(&a->factor_off);
    for (int i = 0; i < N_ASSESSMENT; i++) col_free(&a->f[i]);
    col_free(&a->factors);
    PlanTable *p = &c->plans;
    int_free(&p->child); int_free(&p->episode); int_free(&p->line);
    for (int i = 0; i < N_CINPLAN; i++) col_free(&p->f[i]);
    S47Table *s = &c->s47;
    int_free(&s->child); int_free(&s->episode); int_free(&s->line);
    for (int i = 0; i < N_S47; i++) col_free(&s->f[i]);
    CppTable *k = &c->cpps;
    int_free(&k->child); int_free(&k->episode); int_free(&k->seq); int_free(&k->line);
    for (int i = 0; i < N_CPP; i++) col_free(&k->f[i]);
    ReviewTable *r = &c->reviews;
    int_free(&r->child); int_free(&r->episode); int_free(&r->cpp); int_free(&r->line);
    col_free(&r->date);
}

static PyObject *build(Ctx *c) {
    PyObject *out = PyDict_New();
    if (!out) return NULL;
    {
        const char *n[] = {"child_seq", "line", "n_disability", "n_none"};
        IntCol *v[] = {&c->children.seq, &c->children.line, &c->children.n_dis,
                       &c->children.n_none};
        if (put(out, "children", table(4, n, v, N_CHILD, CHILD_NAMES, c->children.f))) goto fail;
    }
    {
        const char *n[] = {"child_seq", "line"};
        IntCol *v[] = {&c->dis.child, &c->dis.line};
        const char *cn[] = {"disability"};
        if (put(out, "disabilities", table(2, n, v, 1, cn, &c->dis.code))) goto fail;
    }
    {
        const char *n[] = {"child_seq", "episode_seq", "line"};
        IntCol *v[] = {&c->episodes.child, &c->episodes.seq, &c->episodes.line};
        if (put(out, "referrals", table(3, n, v, N_EPISODE, EPISODE_NAMES, c->episodes.f)))
            goto fail;
    }
    {
        AssessTable *a = &c->assessments;
        if (a->factor_off.n == 0 && int_push(&a->factor_off, 0) < 0) goto fail;
        const char *n[] = {"child_seq", "episode_seq", "line", "factor_offsets"};
        IntCol *v[] = {&a->child, &a->episode, &a->line, &a->factor_off};
        PyObject *t = table(4, n, v, N_ASSESSMENT, ASSESSMENT_NAMES, a->f);
        if (!t || put(t, "factor_values", col_tuple(&a->factors)) ||
            put(out, "assessments", t))
            goto fail;
    }
    {
        const char *n[] = {"child_seq", "episode_seq", "line"};
        IntCol *v[] = {&c->plans.child, &c->plans.episode, &c->plans.line};
        if (put(out, "cin_plans", table(3, n, v, N_CINPLAN, CINPLAN_NAMES, c->plans.f)))
            goto fail;
    }
    {
        const char *n[] = {"child_seq", "episode_seq", "line"};
        IntCol *v[] = {&c->s47.child, &c->s47.episode, &c->s47.line};
        if (put(out, "section47", table(3, n, v, N_S47, S47_NAMES, c->s47.f))) goto fail;
    }
    {
        const char *n[] = {"child_seq", "episode_seq", "cpp_seq", "line"};
        IntCol *v[] = {&c->cpps.child, &c->cpps.episode, &c->cpps.seq, &c->cpps.line};
        if (put(out, "cp_plans", table(4, n, v, N_CPP, CPP_NAMES, c->cpps.f))) goto fail;
    }
    {
        const char *n[] = {"child_seq", "episode_seq", "cpp_seq", "line"};
        IntCol *v[] = {&c->reviews.child, &c->reviews.episode, &c->reviews.cpp,
                       &c->reviews.line};
        const char *cn[] = {"review_date"};
        if (put(out, "cpp_reviews", table(4, n, v, 1, cn, &c->reviews.date))) goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *parse(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer buf;
    if (!PyArg_ParseTuple(args, "y*", &buf)) return NULL;
    Ctx *c = calloc(1, sizeof(Ctx));
    if (!c) {
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    c->p = buf.buf;
    c->end = c->p + buf.len;
    c->line = 1;
    int ok;
    Py_BEGIN_ALLOW_THREADS
    ok = parse_all(c);
    Py_END_ALLOW_THREADS
    PyObject *result;
    if (c->failed == 2) {
        result = PyErr_NoMemory();
    } else if (!ok || c->failed) {
        result = Py_NewRef(Py_None);
    } else {
        /* every newline sits in whitespace or a value, both counted while scanning */
        PyObject *tables = build(c);
        result = tables ? Py_BuildValue("(NL)", tables, (long long)(c->line - 1)) : NULL;
    }
    ctx_free(c);
    free(c);
    PyBuffer_Release(&buf);
    return result;
}


/* ---- keyed hashing of identifiers (HMAC-SHA256, FIPS 180-4 / RFC 2104) ----------------------
 * The Python side (cinresearch.pseudonymise) gives the same digests with hmac/hashlib; this
 * saves the per-identifier Python work on national files. Round constants are derived at import
 * from the primes as the standard defines them; tests compare every digest with hashlib's.     */
#include <math.h>

static uint32_t SHA_K[64], SHA_H0[8];

static void sha_constants(void) {
    int found = 0;
    for (int n = 2; found < 64; n++) {
        int prime = 1;
        for (int d = 2; d * d <= n; d++)
            if (n % d == 0) { prime = 0; break; }
        if (!prime) continue;
        long double c = cbrtl((long double)n), r = sqrtl((long double)n);
        SHA_K[found] = (uint32_t)((c - floorl(c)) * 4294967296.0L);
        if (found < 8) SHA_H0[found] = (uint32_t)((r - floorl(r)) * 4294967296.0L);
        found++;
    }
}

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = ((uint32_t)p[4 * i] << 24) | ((uint32_t)p[4 * i + 1] << 16) |
               ((uint32_t)p[4 * i + 2] << 8) | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) +
                      SHA_K[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

typedef struct { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t n; } Sha;

static void sha_init(Sha *s) {
    memcpy(s->h, SHA_H0, sizeof s->h);
    s->len = 0;
    s->n = 0;
}

static void sha_update(Sha *s, const uint8_t *p, size_t len) {
    s->len += len;
    while (len) {
        size_t take = 64 - s->n < len ? 64 - s->n : len;
        memcpy(s->buf + s->n, p, take);
        s->n += take; p += take; len -= take;
        if (s->n == 64) { sha_block(s->h, s->buf); s->n = 0; }
    }
}

static void sha_final(Sha *s, uint8_t out[32]) {
    uint64_t bits = s->len * 8;
    s->buf[s->n++] = 0x80;
    if (s->n > 56) {
        memset(s->buf + s->n, 0, 64 - s->n);
        sha_block(s->h, s->buf);
        s->n = 0;
    }
    memset(s->buf + s->n, 0, 56 - s->n);
    for (int i = 0; i < 8; i++) s->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha_block(s->h, s->buf);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24); out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8); out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

/* hmac_hex(key, prefix, offsets, data, chars) -> bytes: for each string i (data between int64
 * offsets[i] and offsets[i+1]), the first `chars` hex digits of HMAC-SHA256(key, prefix+string). */
static PyObject *hmac_hex(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer key, prefix, offsets, data;
    int chars;
    if (!PyArg_ParseTuple(args, "y*y*y*y*i", &key, &prefix, &offsets, &data, &chars)) return NULL;
    PyObject *result = NULL;
    int64_t n = offsets.len / (Py_ssize_t)sizeof(int64_t) - 1;
    if (n < 0 || chars < 0 || chars > 64 || offsets.len % sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "hmac_hex: bad offsets or digest length");
        goto done;
    }
    uint8_t block[64] = {0}, ipad[64], opad[64];
    if (key.len > 64) {
        Sha s; sha_init(&s); sha_update(&s, key.buf, (size_t)key.len); sha_final(&s, block);
    } else {
        memcpy(block, key.buf, (size_t)key.len);
    }
    for (int i = 0; i < 64; i++) { ipad[i] = block[i] ^ 0x36; opad[i] = block[i] ^ 0x5c; }
    Sha inner0, outer0;
    sha_init(&inner0); sha_update(&inner0, ipad, 64); sha_update(&inner0, prefix.buf, (size_t)prefix.len);
    sha_init(&outer0); sha_update(&outer0, opad, 64);
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(n * chars));
    if (!result) goto done;
    char *out = PyBytes_AS_STRING(result);
    const int64_t *off = offsets.buf;
    const uint8_t *bytes = data.buf;
    static const char HEX[] = "0123456789abcdef";
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int64_t i = 0; i < n; i++) {
        int64_t a = off[i], b = off[i + 1];
        if (a < 0 || b < a || b > data.len) { bad = 1; break; }
        Sha s = inner0;
        uint8_t digest[32];
        sha_update(&s, bytes + a, (size_t)(b - a));
        sha_final(&s, digest);
        Sha o = outer0;
        sha_update(&o, digest, 32);
        sha_final(&o, digest);
        for (int j = 0; j < chars; j++)
            out[i * chars + j] = HEX[(digest[j / 2] >> (j % 2 ? 0 : 4)) & 15];
    }
    Py_END_ALLOW_THREADS
    if (bad) {
        Py_CLEAR(result);
        PyErr_SetString(PyExc_ValueError, "hmac_hex: offsets outside the data");
    }
done:
    PyBuffer_Release(&key); PyBuffer_Release(&prefix);
    PyBuffer_Release(&offsets); PyBuffer_Release(&data);
    return result;
}

static PyMethodDef METHODS[] = {
    {"parse", parse, METH_VARARGS,
     "parse(data: bytes) -> (dict, int) | None: columns for a run of <Child> elements in schema "
     "order and the number of newlines read, or None when the text is not of that form."},
    {"hmac_hex", hmac_hex, METH_VARARGS,
     "hmac_hex(key, prefix, offsets, data, chars) -> bytes: the first `chars` hex digits of "
     "HMAC-SHA256(key, prefix + s) for each string s given by int64 offsets into data."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "_cinfast", NULL, -1, METHODS, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__cinfast(void) {
    sha_constants();
    return PyModule_Create(&MODULE);
}
