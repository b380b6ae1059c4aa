/* The expression language: a one-pass compiler (lexer and recursive-descent
 * parser that type-checks and emits stack bytecode as it goes) and an
 * evaluator over a fixed-size value stack that never allocates. */
#include "loyal/expr.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loyal/arena.h"
#include "loyal/timeutil.h"

#define MAX_STACK 128 /* value stack slots: more than MAX_NEST levels can fill */
#define MAX_NEST  40  /* nesting of parentheses, unary operators and calls */
#define MAX_LIST  1024
#define MAX_ARGS  2
#define MS_DAY    86400000LL

/* ---- bytecode ---- */

/* An instruction is 32 bits: the opcode in the low 8, an operand above. */
enum op {
    OP_INT,     /* push ints[arg] (integers, durations) */
    OP_STR,     /* push strs[arg] */
    OP_LIST,    /* push lists[arg] */
    OP_BOOL,    /* push arg */
    OP_LOAD,    /* push the context field names[arg] */
    OP_EVATTR,  /* push the event attribute named strs[arg] */
    OP_MEMATTR, /* push the member attribute named strs[arg] */
    OP_NEG,     /* integers and durations */
    OP_NOT,     /* booleans */
    OP_ADD,     /* integers, times and durations alike: checked int64 */
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_MOD,
    OP_CMP_INT,   /* arg: enum cmp */
    OP_CMP_STR,   /* arg: enum cmp */
    OP_IN_LSTR,   /* string in list of strings */
    OP_IN_LINT,   /* integer in list of integers */
    OP_IN_STR,    /* substring */
    OP_JF_OR_POP, /* &&: if the top is false jump to arg (keeping it), else pop */
    OP_JF_TOP,    /* the same, between the conditions of the outermost && chain */
    OP_JT_OR_POP, /* ||: if the top is true jump to arg (keeping it), else pop */
    OP_WEEKDAY,
    OP_HOUR,
    OP_MONTH,
    OP_DAY,
    OP_DAYS_BETWEEN,
    OP_IS_BIRTHDAY,
    OP_HAS_TAG,
    OP_STARTS_WITH,
    OP_LOWER,
};

enum cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

struct kstr {
    const char *s;
    size_t len;
};

struct klist {
    const void *items; /* const char *const * or const int64_t * */
    size_t n;
};

struct ly_expr {
    enum ly_expr_type type;
    uint32_t *code;
    uint32_t *pos; /* per instruction: line << 16 | column, for run-time errors */
    size_t ncode, capcode;
    int64_t *ints;
    size_t nints, capints;
    struct kstr *strs;
    size_t nstrs, capstrs;
    struct klist *lists;
    size_t nlists, caplists;
    size_t maxdepth;
    unsigned scopes_used;
    /* The conditions of the outermost && chain (the whole expression when
     * there is none), as byte ranges of src, for ly_expr_explain: the i-th
     * OP_JF_TOP follows the i-th condition. */
    const char *src;
    struct span {
        uint32_t start, end;
    } * conds;
    size_t nconds, capconds;
    ly_arena arena; /* string and list constants */
};

/* ---- names: one row per name the context provides ---- */

enum src_kind { K_STR, K_INT, K_LIST, I_STR, I_INT, I_LIST };

static const struct name {
    const char *name;
    unsigned scope; /* 0: always available */
    enum ly_expr_type type;
    enum src_kind kind;
    size_t off, noff; /* in ly_expr_ctx, or ly_expr_item for I_* kinds */
} names[] = {
    {"event.type", LY_EXPR_EVENT, LY_T_STR, K_STR, offsetof(ly_expr_ctx, event_type), 0},
    {"event.amount", LY_EXPR_EVENT, LY_T_INT, K_INT, offsetof(ly_expr_ctx, event_amount), 0},
    {"event.currency", LY_EXPR_EVENT, LY_T_STR, K_STR, offsetof(ly_expr_ctx, event_currency), 0},
    {"event.channel", LY_EXPR_EVENT, LY_T_STR, K_STR, offsetof(ly_expr_ctx, event_channel), 0},
    {"event.store", LY_EXPR_EVENT, LY_T_STR, K_STR, offsetof(ly_expr_ctx, event_store), 0},
    {"event.occurred_at", LY_EXPR_EVENT, LY_T_TIME, K_INT, offsetof(ly_expr_ctx, event_occurred_at),
     0},
    {"item.sku", LY_EXPR_ITEM, LY_T_STR, I_STR, offsetof(ly_expr_item, sku), 0},
    {"item.category", LY_EXPR_ITEM, LY_T_STR, I_STR, offsetof(ly_expr_item, category), 0},
    {"item.quantity", LY_EXPR_ITEM, LY_T_INT, I_INT, offsetof(ly_expr_item, quantity), 0},
    {"item.unit_price", LY_EXPR_ITEM, LY_T_INT, I_INT, offsetof(ly_expr_item, unit_price), 0},
    {"item.amount", LY_EXPR_ITEM, LY_T_INT, I_INT, offsetof(ly_expr_item, amount), 0},
    {"item.tags", LY_EXPR_ITEM, LY_T_LIST_STR, I_LIST, offsetof(ly_expr_item, tags),
     offsetof(ly_expr_item, ntags)},
    {"member.tier", LY_EXPR_MEMBER, LY_T_STR, K_STR, offsetof(ly_expr_ctx, member_tier), 0},
    {"member.status", LY_EXPR_MEMBER, LY_T_STR, K_STR, offsetof(ly_expr_ctx, member_status), 0},
    {"member.created_at", LY_EXPR_MEMBER, LY_T_TIME, K_INT,
     offsetof(ly_expr_ctx, member_created_at), 0},
    {"member.birthdate", LY_EXPR_MEMBER, LY_T_STR, K_STR, offsetof(ly_expr_ctx, member_birthdate),
     0},
    {"member.lifetime_spend", LY_EXPR_MEMBER, LY_T_INT, K_INT,
     offsetof(ly_expr_ctx, member_lifetime_spend), 0},
    {"member.purchase_count", LY_EXPR_MEMBER, LY_T_INT, K_INT,
     offsetof(ly_expr_ctx, member_purchase_count), 0},
    {"member.days_since_last_purchase", LY_EXPR_MEMBER, LY_T_INT, K_INT,
     offsetof(ly_expr_ctx, member_days_since_last_purchase), 0},
    {"member.tags", LY_EXPR_MEMBER, LY_T_LIST_STR, K_LIST, offsetof(ly_expr_ctx, member_tags),
     offsetof(ly_expr_ctx, nmember_tags)},
    {"now", 0, LY_T_TIME, K_INT, offsetof(ly_expr_ctx, now), 0},
};

#define NNAMES (sizeof names / sizeof names[0])

static const struct attr_prefix {
    const char *prefix;
    unsigned scope;
    enum op op;
} attr_prefixes[] = {
    {"event.attributes.", LY_EXPR_EVENT, OP_EVATTR},
    {"member.attributes.", LY_EXPR_MEMBER, OP_MEMATTR},
};

static const struct fn {
    const char *name;
    enum op op;
    int nargs;
    enum ly_expr_type args[MAX_ARGS];
    enum ly_expr_type result;
} fns[] = {
    {"weekday", OP_WEEKDAY, 1, {LY_T_TIME}, LY_T_INT},
    {"hour", OP_HOUR, 1, {LY_T_TIME}, LY_T_INT},
    {"month", OP_MONTH, 1, {LY_T_TIME}, LY_T_INT},
    {"day", OP_DAY, 1, {LY_T_TIME}, LY_T_INT},
    {"days_between", OP_DAYS_BETWEEN, 2, {LY_T_TIME, LY_T_TIME}, LY_T_INT},
    {"is_birthday", OP_IS_BIRTHDAY, 2, {LY_T_STR, LY_T_TIME}, LY_T_BOOL},
    {"has_tag", OP_HAS_TAG, 2, {LY_T_LIST_STR, LY_T_STR}, LY_T_BOOL},
    {"starts_with", OP_STARTS_WITH, 2, {LY_T_STR, LY_T_STR}, LY_T_BOOL},
    {"lower", OP_LOWER, 1, {LY_T_STR}, LY_T_STR},
};

static const char *const type_names[] = {
    [LY_T_INT] = "integer",
    [LY_T_STR] = "string",
    [LY_T_BOOL] = "boolean",
    [LY_T_TIME] = "time",
    [LY_T_DURATION] = "duration",
    [LY_T_LIST_STR] = "list of strings",
    [LY_T_LIST_INT] = "list of integers",
};

/* A type with its article, for messages: "an integer", "a string". */
static const char *a_type(enum ly_expr_type t)
{
    static const char *const with_article[] = {
        [LY_T_INT] = "an integer",
        [LY_T_STR] = "a string",
        [LY_T_BOOL] = "a boolean",
        [LY_T_TIME] = "a time",
        [LY_T_DURATION] = "a duration",
        [LY_T_LIST_STR] = "a list of strings",
        [LY_T_LIST_INT] = "a list of integers",
    };
    return with_article[t];
}

const char *ly_expr_type_name(enum ly_expr_type t)
{
    if ((unsigned)t >= sizeof type_names / sizeof type_names[0])
        return "unknown";
    return type_names[t];
}

/* ---- lexer ---- */

enum tok {
    T_EOF,
    T_INT,
    T_DUR,
    T_STR,
    T_NAME,
    T_TRUE,
    T_FALSE,
    T_IN,
    T_LPAREN,
    T_RPAREN,
    T_LBRACK,
    T_RBRACK,
    T_COMMA,
    T_AND,
    T_OR,
    T_NOT,
    T_EQ,
    T_NE,
    T_LT,
    T_LE,
    T_GT,
    T_GE,
    T_PLUS,
    T_MINUS,
    T_STAR,
    T_SLASH,
    T_PERCENT,
};

struct token {
    enum tok kind;
    const char *start;
    size_t len;
    int line, col;
    int64_t ival;
    char *sval; /* decoded string literal, in the expression's arena */
    size_t slen;
};

struct comp {
    const char *src;
    size_t pos;
    int line;
    size_t line_start;
    struct token tok;
    size_t prev_end; /* where the token before tok ends */
    bool top_or;     /* the outermost level has an || */
    unsigned scopes;
    ly_expr *e;
    ly_error *err;
    int rc;
    int eline, ecol;
    int nest;
    size_t depth;
    int at_line, at_col; /* the source position given to the next instruction */
    int64_t *list_ints;  /* a list literal's elements while it is read */
    const char **list_strs;
};

/* A compiled operand: its type, and its value when it is an integer
 * literal (so that dividing by a literal zero is refused). */
struct val {
    enum ly_expr_type type;
    bool is_const;
    int64_t cval;
    int line, col;
};

static int fail(struct comp *c, const char *code, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(struct comp *c, const char *code, int line, int col, const char *fmt, ...)
{
    char msg[256], field[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(field, sizeof field, "%d:%d", line, col);
    c->rc = LY_EREFUSED;
    c->eline = line;
    c->ecol = col;
    ly_error_set(c->err, LY_EREFUSED, code, field, "%s", msg);
    return -1;
}

static int nomem(struct comp *c)
{
    c->rc = LY_ENOMEM;
    c->eline = c->ecol = 0;
    ly_error_set(c->err, LY_ENOMEM, "out_of_memory", "", "out of memory compiling an expression");
    return -1;
}

static int syntax(struct comp *c, const struct token *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int syntax(struct comp *c, const struct token *t, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(c, "expression_error", t->line, t->col, "%s", msg);
}

static bool is_alpha(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_ident(int ch)
{
    return is_alpha(ch) || is_digit(ch);
}

/* How a token reads in a message: "end of input" or the quoted text. */
static void describe(const struct token *t, char *buf, size_t size)
{
    if (t->kind == T_EOF) {
        snprintf(buf, size, "end of input");
        return;
    }
    int n = t->len > 32 ? 32 : (int)t->len;
    snprintf(buf, size, "\"%.*s%s\"", n, t->start, t->len > 32 ? "..." : "");
}

static const struct {
    const char *text;
    enum tok kind;
} punct[] = {
    {"&&", T_AND},   {"||", T_OR},    {"==", T_EQ},    {"!=", T_NE},     {"<=", T_LE},
    {">=", T_GE},    {"<", T_LT},     {">", T_GT},     {"!", T_NOT},     {"+", T_PLUS},
    {"-", T_MINUS},  {"*", T_STAR},   {"/", T_SLASH},  {"%", T_PERCENT}, {"(", T_LPAREN},
    {")", T_RPAREN}, {"[", T_LBRACK}, {"]", T_RBRACK}, {",", T_COMMA},
};

static const struct {
    char unit;
    int64_t ms;
} units[] = {{'d', MS_DAY}, {'h', 3600000}, {'m', 60000}, {'s', 1000}};

static int lex_string(struct comp *c, struct token *t)
{
    const char *s = c->src;
    size_t i = c->pos + 1, n = 0;
    /* The decoded text is never longer than its source up to the closing
     * quote (or wherever the string turns out to be unterminated). */
    size_t cap = 0;
    while (s[i + cap] && s[i + cap] != '\n' && s[i + cap] != '"')
        cap += s[i + cap] == '\\' && s[i + cap + 1] && s[i + cap + 1] != '\n' ? 2 : 1;
    char *out = ly_arena_alloc(&c->e->arena, cap + 1);
    if (!out)
        return nomem(c);
    for (;;) {
        char ch = s[i];
        if (ch == '\0' || ch == '\n')
            return syntax(c, t, "unterminated string");
        if (ch == '"')
            break;
        if (ch == '\\') {
            char esc = s[i + 1];
            char dec;
            switch (esc) {
            case '"':
            case '\\':
                dec = esc;
                break;
            case 'n':
                dec = '\n';
                break;
            case 't':
                dec = '\t';
                break;
            case 'r':
                dec = '\r';
                break;
            default: {
                struct token at = *t;
                at.col = (int)(i - c->line_start) + 1;
                if (esc == '\0' || esc == '\n')
                    return syntax(c, t, "unterminated string");
                return syntax(c, &at, "unknown escape \"\\%c\" in a string", esc);
            }
            }
            out[n++] = dec;
            i += 2;
            continue;
        }
        out[n++] = ch;
        i++;
    }
    out[n] = '\0';
    t->kind = T_STR;
    t->sval = out;
    t->slen = n;
    t->len = i + 1 - c->pos;
    c->pos = i + 1;
    return 0;
}

static int lex_number(struct comp *c, struct token *t)
{
    const char *s = c->src;
    size_t i = c->pos;
    int64_t v = 0;
    bool over = false;
    while (is_digit(s[i])) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
            over = true;
        i++;
    }
    t->kind = T_INT;
    if (s[i] == '.' && is_digit(s[i + 1]))
        return syntax(c, t, "numbers are whole: amounts are integers in minor units (cents)");
    if (is_alpha(s[i])) {
        size_t j = i;
        while (is_ident(s[j]))
            j++;
        t->len = j - c->pos;
        bool found = false;
        if (j == i + 1)
            for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
                if (units[k].unit == s[i]) {
                    if (!over && __builtin_mul_overflow(v, units[k].ms, &v))
                        over = true;
                    found = true;
                }
        if (!found)
            return syntax(c, t, "unknown duration unit in \"%.*s\" (use d, h, m or s)",
                          (int)(t->len > 32 ? 32 : t->len), t->start);
        t->kind = T_DUR;
        i = j;
    }
    t->len = i - c->pos;
    if (over)
        return syntax(c, t, "number \"%.*s\" is out of range", (int)(t->len > 32 ? 32 : t->len),
                      t->start);
    t->ival = v;
    c->pos = i;
    return 0;
}

static int lex_name(struct comp *c, struct token *t)
{
    const char *s = c->src;
    size_t i = c->pos;
    while (is_ident(s[i]))
        i++;
    while (s[i] == '.') {
        if (!is_ident(s[i + 1])) {
            struct token at = *t;
            at.col = (int)(i + 1 - c->line_start) + 1;
            at.line = c->line;
            return syntax(c, &at, "expected a name after \".\"");
        }
        i++;
        while (is_ident(s[i]))
            i++;
    }
    t->len = i - c->pos;
    t->kind = T_NAME;
    if (t->len == 4 && memcmp(t->start, "true", 4) == 0)
        t->kind = T_TRUE;
    else if (t->len == 5 && memcmp(t->start, "false", 5) == 0)
        t->kind = T_FALSE;
    else if (t->len == 2 && memcmp(t->start, "in", 2) == 0)
        t->kind = T_IN;
    c->pos = i;
    return 0;
}

/* Reads the next token into c->tok. */
static int next(struct comp *c)
{
    const char *s = c->src;
    for (;;) {
        char ch = s[c->pos];
        if (ch == '\n') {
            c->pos++;
            c->line++;
            c->line_start = c->pos;
        } else if (ch == ' ' || ch == '\t' || ch == '\r') {
            c->pos++;
        } else if (ch == '#') {
            while (s[c->pos] && s[c->pos] != '\n')
                c->pos++;
        } else {
            break;
        }
    }
    struct token *t = &c->tok;
    if (t->start)
        c->prev_end = (size_t)(t->start - c->src) + t->len;
    memset(t, 0, sizeof *t);
    t->start = s + c->pos;
    t->line = c->line;
    t->col = (int)(c->pos - c->line_start) + 1;
    char ch = s[c->pos];
    if (ch == '\0') {
        t->kind = T_EOF;
        return 0;
    }
    if (is_digit(ch))
        return lex_number(c, t);
    if (is_alpha(ch))
        return lex_name(c, t);
    if (ch == '"')
        return lex_string(c, t);
    for (size_t k = 0; k < sizeof punct / sizeof punct[0]; k++) {
        size_t n = strlen(punct[k].text);
        if (strncmp(s + c->pos, punct[k].text, n) == 0) {
            t->kind = punct[k].kind;
            t->len = n;
            c->pos += n;
            return 0;
        }
    }
    t->len = 1;
    if (ch == '&')
        return syntax(c, t, "expected \"&&\" (there is no \"&\" operator)");
    if (ch == '|')
        return syntax(c, t, "expected \"||\" (there is no \"|\" operator)");
    if (ch == '=')
        return syntax(c, t, "expected \"==\" (there is no assignment)");
    if (ch == '\'')
        return syntax(c, t, "strings are written in double quotes");
    if ((unsigned char)ch >= 0x20 && (unsigned char)ch < 0x7f)
        return syntax(c, t, "unexpected character \"%c\"", ch);
    return syntax(c, t, "unexpected byte 0x%02x", (unsigned char)ch);
}

/* ---- emitting ---- */

#define GROW(arr, n, cap) ((n) < (cap) || grow((void **)&(arr), &(cap), sizeof *(arr)) == 0)

static int grow(void **arr, size_t *cap, size_t elem)
{
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Gives back what a finished array does not use (keeping it if that fails). */
static void shrink(void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n == 0 || n == *cap)
        return;
    void *p = realloc(*arr, n * elem);
    if (p) {
        *arr = p;
        *cap = n;
    }
}

/* effect: how the instruction changes the stack depth. */
static int emit(struct comp *c, enum op op, uint32_t arg, int effect)
{
    ly_expr *e = c->e;
    if (e->ncode == e->capcode) {
        size_t cap = e->capcode, pcap = e->capcode;
        if (grow((void **)&e->code, &cap, sizeof *e->code) < 0 ||
            grow((void **)&e->pos, &pcap, sizeof *e->pos) < 0)
            return nomem(c);
        e->capcode = cap;
    }
    e->pos[e->ncode] = (uint32_t)c->at_line << 16 | (uint32_t)c->at_col;
    e->code[e->ncode++] = (uint32_t)op | arg << 8;
    c->depth = (size_t)((long)c->depth + effect);
    if (c->depth > e->maxdepth)
        e->maxdepth = c->depth;
    return 0;
}

static int add_int(struct comp *c, int64_t v, uint32_t *idx)
{
    ly_expr *e = c->e;
    for (size_t i = 0; i < e->nints; i++)
        if (e->ints[i] == v) {
            *idx = (uint32_t)i;
            return 0;
        }
    if (!GROW(e->ints, e->nints, e->capints))
        return nomem(c);
    e->ints[e->nints] = v;
    *idx = (uint32_t)e->nints++;
    return 0;
}

static int add_str(struct comp *c, const char *s, size_t len, uint32_t *idx)
{
    ly_expr *e = c->e;
    if (!GROW(e->strs, e->nstrs, e->capstrs))
        return nomem(c);
    char *copy = ly_arena_strndup(&e->arena, s, len);
    if (!copy)
        return nomem(c);
    e->strs[e->nstrs].s = copy;
    e->strs[e->nstrs].len = len;
    *idx = (uint32_t)e->nstrs++;
    return 0;
}

/* ---- parser and type checker ---- */

static int parse_or(struct comp *c, struct val *v);

static int enter(struct comp *c)
{
    if (++c->nest > MAX_NEST)
        return syntax(c, &c->tok, "expression is nested too deeply (at most %d levels)", MAX_NEST);
    return 0;
}

static int type_error(struct comp *c, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int type_error(struct comp *c, int line, int col, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return fail(c, "type_error", line, col, "%s", msg);
}

static int parse_list(struct comp *c, struct val *v)
{
    ly_expr *e = c->e;
    struct token open = c->tok;
    enum ly_expr_type elem = LY_T_INT;
    size_t n = 0;
    /* Elements are literals; at most MAX_LIST, gathered first, then copied
     * to the expression at their exact size. */
    if (!c->list_ints)
        c->list_ints = malloc(MAX_LIST * sizeof *c->list_ints);
    if (!c->list_strs)
        c->list_strs = malloc(MAX_LIST * sizeof *c->list_strs);
    int64_t *ints = c->list_ints;
    const char **strs = c->list_strs;
    if (!ints || !strs)
        return nomem(c);
    if (next(c) < 0)
        return -1;
    if (c->tok.kind == T_RBRACK)
        return type_error(c, open.line, open.col, "an empty list has no element type");
    for (;;) {
        struct token at = c->tok;
        bool neg = false;
        if (c->tok.kind == T_MINUS) {
            neg = true;
            if (next(c) < 0)
                return -1;
        }
        enum ly_expr_type t;
        if (c->tok.kind == T_INT)
            t = LY_T_INT;
        else if (c->tok.kind == T_STR && !neg)
            t = LY_T_STR;
        else
            return syntax(c, &at, "a list holds string or integer literals only");
        if (n == 0)
            elem = t;
        else if (t != elem)
            return type_error(c, at.line, at.col, "list elements must all be %ss",
                              ly_expr_type_name(elem));
        if (n == MAX_LIST)
            return syntax(c, &at, "a list holds at most %d elements", MAX_LIST);
        if (t == LY_T_INT)
            ints[n] = neg ? -c->tok.ival : c->tok.ival;
        else
            strs[n] = c->tok.sval;
        n++;
        if (next(c) < 0)
            return -1;
        if (c->tok.kind == T_RBRACK)
            break;
        if (c->tok.kind != T_COMMA) {
            char d[48];
            describe(&c->tok, d, sizeof d);
            return syntax(c, &c->tok, "expected \",\" or \"]\" in the list, found %s", d);
        }
        if (next(c) < 0)
            return -1;
    }
    if (!GROW(e->lists, e->nlists, e->caplists))
        return nomem(c);
    size_t bytes = elem == LY_T_INT ? n * sizeof *ints : n * sizeof *strs;
    void *items = ly_arena_alloc(&e->arena, bytes);
    if (!items)
        return nomem(c);
    memcpy(items, elem == LY_T_INT ? (const void *)ints : (const void *)strs, bytes);
    e->lists[e->nlists].items = items;
    e->lists[e->nlists].n = n;
    if (emit(c, OP_LIST, (uint32_t)e->nlists++, +1) < 0)
        return -1;
    v->type = elem == LY_T_INT ? LY_T_LIST_INT : LY_T_LIST_STR;
    return next(c);
}

static int parse_call(struct comp *c, const struct token *name, struct val *v)
{
    const struct fn *f = NULL;
    for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++)
        if (strlen(fns[k].name) == name->len && memcmp(fns[k].name, name->start, name->len) == 0)
            f = &fns[k];
    if (!f)
        return fail(c, "unknown_name", name->line, name->col, "unknown function \"%.*s\"",
                    (int)(name->len > 64 ? 64 : name->len), name->start);
    if (enter(c) < 0 || next(c) < 0)
        return -1;
    int n = 0;
    if (c->tok.kind != T_RPAREN) {
        for (;;) {
            struct val a = {0};
            struct token at = c->tok;
            if (n == f->nargs)
                return type_error(c, at.line, at.col, "%s takes %d argument%s", f->name, f->nargs,
                                  f->nargs == 1 ? "" : "s");
            if (parse_or(c, &a) < 0)
                return -1;
            if (a.type != f->args[n])
                return type_error(c, a.line, a.col, "argument %d of %s must be %s, found %s", n + 1,
                                  f->name, a_type(f->args[n]), a_type(a.type));
            n++;
            if (c->tok.kind != T_COMMA)
                break;
            if (next(c) < 0)
                return -1;
        }
    }
    if (c->tok.kind != T_RPAREN) {
        char d[48];
        describe(&c->tok, d, sizeof d);
        return syntax(c, &c->tok, "expected \")\" after the arguments of %s, found %s", f->name, d);
    }
    if (n != f->nargs)
        return type_error(c, c->tok.line, c->tok.col, "%s takes %d argument%s, found %d", f->name,
                          f->nargs, f->nargs == 1 ? "" : "s", n);
    if (emit(c, f->op, 0, 1 - f->nargs) < 0)
        return -1;
    c->nest--;
    v->type = f->result;
    return next(c);
}

static int parse_name(struct comp *c, struct val *v)
{
    struct token name = c->tok;
    if (next(c) < 0)
        return -1;
    if (c->tok.kind == T_LPAREN)
        return parse_call(c, &name, v);
    for (size_t k = 0; k < sizeof fns / sizeof fns[0]; k++)
        if (strlen(fns[k].name) == name.len && memcmp(fns[k].name, name.start, name.len) == 0)
            return syntax(c, &c->tok, "expected \"(\" after %s", fns[k].name);
    int shown = (int)(name.len > 64 ? 64 : name.len);
    for (size_t k = 0; k < NNAMES; k++) {
        if (strlen(names[k].name) != name.len || memcmp(names[k].name, name.start, name.len))
            continue;
        if (names[k].scope && !(names[k].scope & c->scopes))
            return fail(c, "unknown_name", name.line, name.col, "\"%.*s\" cannot be used here",
                        shown, name.start);
        v->type = names[k].type;
        c->e->scopes_used |= names[k].scope;
        c->at_line = name.line;
        c->at_col = name.col;
        return emit(c, OP_LOAD, (uint32_t)k, +1);
    }
    for (size_t k = 0; k < sizeof attr_prefixes / sizeof attr_prefixes[0]; k++) {
        const struct attr_prefix *p = &attr_prefixes[k];
        size_t pl = strlen(p->prefix);
        if (name.len <= pl || memcmp(name.start, p->prefix, pl) != 0)
            continue;
        if (!(p->scope & c->scopes))
            return fail(c, "unknown_name", name.line, name.col, "\"%.*s\" cannot be used here",
                        shown, name.start);
        if (memchr(name.start + pl, '.', name.len - pl))
            break;
        uint32_t idx;
        if (add_str(c, name.start + pl, name.len - pl, &idx) < 0)
            return -1;
        v->type = LY_T_STR;
        c->e->scopes_used |= p->scope;
        return emit(c, p->op, idx, +1);
    }
    return fail(c, "unknown_name", name.line, name.col, "unknown name \"%.*s\"", shown, name.start);
}

static int parse_primary(struct comp *c, struct val *v)
{
    struct token t = c->tok;
    uint32_t idx;
    v->line = t.line;
    v->col = t.col;
    v->is_const = false;
    switch (t.kind) {
    case T_INT:
    case T_DUR:
        if (add_int(c, t.ival, &idx) < 0 || emit(c, OP_INT, idx, +1) < 0)
            return -1;
        v->type = t.kind == T_INT ? LY_T_INT : LY_T_DURATION;
        v->is_const = t.kind == T_INT;
        v->cval = t.ival;
        return next(c);
    case T_STR:
        if (add_str(c, t.sval, t.slen, &idx) < 0 || emit(c, OP_STR, idx, +1) < 0)
            return -1;
        v->type = LY_T_STR;
        return next(c);
    case T_TRUE:
    case T_FALSE:
        if (emit(c, OP_BOOL, t.kind == T_TRUE, +1) < 0)
            return -1;
        v->type = LY_T_BOOL;
        return next(c);
    case T_NAME:
        return parse_name(c, v);
    case T_LBRACK:
        return parse_list(c, v);
    case T_LPAREN: {
        if (enter(c) < 0 || next(c) < 0 || parse_or(c, v) < 0)
            return -1;
        if (c->tok.kind != T_RPAREN) {
            char d[48];
            describe(&c->tok, d, sizeof d);
            return syntax(c, &c->tok, "expected \")\" to close \"(\" at %d:%d, found %s", t.line,
                          t.col, d);
        }
        c->nest--;
        v->line = t.line;
        v->col = t.col;
        return next(c);
    }
    default: {
        char d[48];
        describe(&t, d, sizeof d);
        return syntax(c, &t, "expected an expression, found %s", d);
    }
    }
}

static int parse_unary(struct comp *c, struct val *v)
{
    struct token t = c->tok;
    if (t.kind != T_NOT && t.kind != T_MINUS)
        return parse_primary(c, v);
    if (enter(c) < 0 || next(c) < 0 || parse_unary(c, v) < 0)
        return -1;
    c->nest--;
    if (t.kind == T_NOT) {
        if (v->type != LY_T_BOOL)
            return type_error(c, t.line, t.col, "operator \"!\" needs a boolean, found %s",
                              a_type(v->type));
        v->is_const = false;
        if (emit(c, OP_NOT, 0, 0) < 0)
            return -1;
    } else {
        if (v->type != LY_T_INT && v->type != LY_T_DURATION)
            return type_error(c, t.line, t.col, "operator \"-\" cannot be applied to %s",
                              a_type(v->type));
        c->at_line = t.line;
        c->at_col = t.col;
        if (emit(c, OP_NEG, 0, 0) < 0)
            return -1;
        if (v->is_const)
            v->cval = -v->cval; /* literals are at most INT64_MAX */
    }
    v->line = t.line;
    v->col = t.col;
    return 0;
}

/* The operand types each arithmetic operator accepts, and what it gives. */
static const struct arith {
    enum tok op;
    enum ly_expr_type l, r, result;
} ariths[] = {
    {T_PLUS, LY_T_INT, LY_T_INT, LY_T_INT},
    {T_PLUS, LY_T_TIME, LY_T_DURATION, LY_T_TIME},
    {T_PLUS, LY_T_DURATION, LY_T_TIME, LY_T_TIME},
    {T_PLUS, LY_T_DURATION, LY_T_DURATION, LY_T_DURATION},
    {T_MINUS, LY_T_INT, LY_T_INT, LY_T_INT},
    {T_MINUS, LY_T_TIME, LY_T_DURATION, LY_T_TIME},
    {T_MINUS, LY_T_TIME, LY_T_TIME, LY_T_DURATION},
    {T_MINUS, LY_T_DURATION, LY_T_DURATION, LY_T_DURATION},
    {T_STAR, LY_T_INT, LY_T_INT, LY_T_INT},
    {T_SLASH, LY_T_INT, LY_T_INT, LY_T_INT},
    {T_PERCENT, LY_T_INT, LY_T_INT, LY_T_INT},
};

static const struct {
    enum tok tok;
    enum op op;
    const char *text;
} arith_ops[] = {
    {T_PLUS, OP_ADD, "+"},  {T_MINUS, OP_SUB, "-"},   {T_STAR, OP_MUL, "*"},
    {T_SLASH, OP_DIV, "/"}, {T_PERCENT, OP_MOD, "%"},
};

static int arith(struct comp *c, const struct token *op, struct val *l, const struct val *r)
{
    size_t k = 0;
    while (arith_ops[k].tok != op->kind)
        k++;
    for (size_t i = 0; i < sizeof ariths / sizeof ariths[0]; i++)
        if (ariths[i].op == op->kind && ariths[i].l == l->type && ariths[i].r == r->type) {
            if ((op->kind == T_SLASH || op->kind == T_PERCENT) && r->is_const && r->cval == 0)
                return type_error(c, r->line, r->col, "division by zero");
            l->type = ariths[i].result;
            l->is_const = false;
            c->at_line = op->line;
            c->at_col = op->col;
            return emit(c, arith_ops[k].op, 0, -1);
        }
    return type_error(c, op->line, op->col, "operator \"%s\" cannot be applied to %s and %s",
                      arith_ops[k].text, ly_expr_type_name(l->type), ly_expr_type_name(r->type));
}

static int parse_mul(struct comp *c, struct val *v)
{
    if (parse_unary(c, v) < 0)
        return -1;
    while (c->tok.kind == T_STAR || c->tok.kind == T_SLASH || c->tok.kind == T_PERCENT) {
        struct token op = c->tok;
        struct val r = {0};
        if (next(c) < 0 || parse_unary(c, &r) < 0 || arith(c, &op, v, &r) < 0)
            return -1;
    }
    return 0;
}

static int parse_add(struct comp *c, struct val *v)
{
    if (parse_mul(c, v) < 0)
        return -1;
    while (c->tok.kind == T_PLUS || c->tok.kind == T_MINUS) {
        struct token op = c->tok;
        struct val r = {0};
        if (next(c) < 0 || parse_mul(c, &r) < 0 || arith(c, &op, v, &r) < 0)
            return -1;
    }
    return 0;
}

static bool is_cmp(enum tok k)
{
    return k == T_EQ || k == T_NE || k == T_LT || k == T_LE || k == T_GT || k == T_GE || k == T_IN;
}

static int compare(struct comp *c, const struct token *op, struct val *l, const struct val *r)
{
    static const enum cmp kinds[] = {[T_EQ] = CMP_EQ, [T_NE] = CMP_NE, [T_LT] = CMP_LT,
                                     [T_LE] = CMP_LE, [T_GT] = CMP_GT, [T_GE] = CMP_GE};
    const char *lt = ly_expr_type_name(l->type), *rt = ly_expr_type_name(r->type);
    int rc;
    if (op->kind == T_IN) {
        if (l->type == LY_T_STR && r->type == LY_T_LIST_STR)
            rc = emit(c, OP_IN_LSTR, 0, -1);
        else if (l->type == LY_T_INT && r->type == LY_T_LIST_INT)
            rc = emit(c, OP_IN_LINT, 0, -1);
        else if (l->type == LY_T_STR && r->type == LY_T_STR)
            rc = emit(c, OP_IN_STR, 0, -1);
        else
            return type_error(c, op->line, op->col, "cannot look for %s in %s", a_type(l->type),
                              a_type(r->type));
    } else {
        if (l->type != r->type)
            return type_error(c, op->line, op->col, "cannot compare %s with %s", lt, rt);
        enum cmp k = kinds[op->kind];
        switch (l->type) {
        case LY_T_STR:
            rc = emit(c, OP_CMP_STR, k, -1);
            break;
        case LY_T_BOOL:
            if (k != CMP_EQ && k != CMP_NE)
                return type_error(c, op->line, op->col,
                                  "booleans can only be compared with == and !=");
            rc = emit(c, OP_CMP_INT, k, -1);
            break;
        case LY_T_LIST_STR:
        case LY_T_LIST_INT:
            return type_error(c, op->line, op->col, "cannot compare lists");
        default:
            rc = emit(c, OP_CMP_INT, k, -1);
            break;
        }
    }
    l->type = LY_T_BOOL;
    l->is_const = false;
    return rc;
}

static int parse_cmp(struct comp *c, struct val *v)
{
    if (parse_add(c, v) < 0)
        return -1;
    if (!is_cmp(c->tok.kind))
        return 0;
    struct token op = c->tok;
    struct val r = {0};
    if (next(c) < 0 || parse_add(c, &r) < 0 || compare(c, &op, v, &r) < 0)
        return -1;
    if (is_cmp(c->tok.kind))
        return syntax(c, &c->tok, "comparisons do not chain: use && or parentheses");
    return 0;
}

static int add_cond(struct comp *c, size_t start)
{
    ly_expr *e = c->e;
    if (!GROW(e->conds, e->nconds, e->capconds))
        return nomem(c);
    e->conds[e->nconds].start = (uint32_t)start;
    e->conds[e->nconds++].end = (uint32_t)c->prev_end;
    return 0;
}

static int logical(struct comp *c, struct val *v, enum tok tk, enum op jump,
                   int (*operand)(struct comp *, struct val *), const char *text)
{
    /* The outermost && chain remembers its conditions for explanations. */
    bool top = tk == T_AND && c->nest == 0;
    if (top)
        jump = OP_JF_TOP;
    size_t start = (size_t)(c->tok.start - c->src);
    if (operand(c, v) < 0 || (top && add_cond(c, start) < 0))
        return -1;
    while (c->tok.kind == tk) {
        if (tk == T_OR && c->nest == 0)
            c->top_or = true;
        struct token op = c->tok;
        struct val r = {0};
        if (v->type != LY_T_BOOL)
            return type_error(c, op.line, op.col, "operator \"%s\" needs booleans, found %s", text,
                              ly_expr_type_name(v->type));
        size_t at = c->e->ncode;
        if (emit(c, jump, 0, -1) < 0 || next(c) < 0)
            return -1;
        start = (size_t)(c->tok.start - c->src);
        if (operand(c, &r) < 0 || (top && add_cond(c, start) < 0))
            return -1;
        if (r.type != LY_T_BOOL)
            return type_error(c, op.line, op.col, "operator \"%s\" needs booleans, found %s", text,
                              ly_expr_type_name(r.type));
        c->e->code[at] = (uint32_t)jump | (uint32_t)c->e->ncode << 8;
        v->is_const = false;
    }
    return 0;
}

static int parse_and(struct comp *c, struct val *v)
{
    return logical(c, v, T_AND, OP_JF_OR_POP, parse_cmp, "&&");
}

static int parse_or(struct comp *c, struct val *v)
{
    int line = c->tok.line, col = c->tok.col;
    if (logical(c, v, T_OR, OP_JT_OR_POP, parse_and, "||") < 0)
        return -1;
    if (v->line == 0) {
        v->line = line;
        v->col = col;
    }
    return 0;
}

void ly_expr_free(ly_expr *e)
{
    if (!e)
        return;
    free(e->code);
    free(e->pos);
    free(e->ints);
    free(e->strs);
    free(e->lists);
    free(e->conds);
    ly_arena_release(&e->arena);
    free(e);
}

int ly_expr_compile_at(const char *src, unsigned scopes, ly_expr **out, ly_error *err, int *line,
                       int *column)
{
    if (line)
        *line = 0;
    if (column)
        *column = 0;
    if (!out)
        return ly_error_set(err, LY_EINVAL, "invalid_request", "", "no output given");
    *out = NULL;
    if (!src)
        return ly_error_set(err, LY_EINVAL, "expression_error", "", "no expression given");
    if (strnlen(src, LY_EXPR_MAX_SOURCE + 1) > LY_EXPR_MAX_SOURCE)
        return ly_error_set(err, LY_EINVAL, "expression_error", "",
                            "an expression holds at most %d bytes", LY_EXPR_MAX_SOURCE);
    struct comp c = {.src = src, .line = 1, .scopes = scopes, .err = err};
    c.e = calloc(1, sizeof *c.e);
    if (!c.e)
        return ly_error_set(err, LY_ENOMEM, "out_of_memory", "", "out of memory");
    ly_arena_init(&c.e->arena, 1024);
    struct val v = {0};
    if (next(&c) < 0 || parse_or(&c, &v) < 0)
        goto out;
    if (c.tok.kind != T_EOF) {
        char d[48];
        describe(&c.tok, d, sizeof d);
        syntax(&c, &c.tok, "expected an operator or the end of the expression, found %s", d);
        goto out;
    }
    if (c.e->maxdepth > MAX_STACK) {
        fail(&c, "expression_error", 1, 1, "expression needs too deep a stack (at most %d)",
             MAX_STACK);
        goto out;
    }
    c.e->type = v.type;
    if (c.top_or) {
        /* a || at the top: the conditions are the whole expression */
        for (size_t i = 0; i < c.e->ncode; i++)
            if ((c.e->code[i] & 0xff) == OP_JF_TOP)
                c.e->code[i] = (c.e->code[i] & ~(uint32_t)0xff) | OP_JF_OR_POP;
        c.e->conds[0].end = (uint32_t)c.prev_end;
        c.e->nconds = 1;
    }
    c.e->src = ly_arena_strdup(&c.e->arena, src);
    if (!c.e->src) {
        nomem(&c);
        goto out;
    }
    size_t pcap = c.e->capcode;
    shrink((void **)&c.e->pos, c.e->ncode, &pcap, sizeof *c.e->pos);
    shrink((void **)&c.e->code, c.e->ncode, &c.e->capcode, sizeof *c.e->code);
    shrink((void **)&c.e->ints, c.e->nints, &c.e->capints, sizeof *c.e->ints);
    shrink((void **)&c.e->strs, c.e->nstrs, &c.e->capstrs, sizeof *c.e->strs);
    shrink((void **)&c.e->lists, c.e->nlists, &c.e->caplists, sizeof *c.e->lists);
    *out = c.e;
    c.e = NULL;
out:
    free(c.list_ints);
    free(c.list_strs);
    if (c.e) {
        ly_expr_free(c.e);
        if (line)
            *line = c.eline;
        if (column)
            *column = c.ecol;
        return c.rc;
    }
    return 0;
}

int ly_expr_compile(const char *src, unsigned scopes, ly_expr **out, ly_error *err)
{
    return ly_expr_compile_at(src, scopes, out, err, NULL, NULL);
}

enum ly_expr_type ly_expr_type(const ly_expr *e)
{
    return e->type;
}

size_t ly_expr_code_size(const ly_expr *e)
{
    return e->ncode;
}

size_t ly_expr_stack_depth(const ly_expr *e)
{
    return e->maxdepth;
}

unsigned ly_expr_scopes(const ly_expr *e)
{
    return e->scopes_used;
}

/* ---- evaluator ---- */

/* A stack slot. Strings: p and n, i = 1 when the text is to be read
 * lowercased (lower() folds lazily, so that nothing is copied). Lists: p is
 * the array, n its length. */
struct slot {
    int64_t i;
    const void *p;
    size_t n;
};

static unsigned char fold(int64_t lowered, unsigned char ch)
{
    return lowered && ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch + 32) : ch;
}

static unsigned char ch_at(const struct slot *s, size_t i)
{
    return fold(s->i, ((const unsigned char *)s->p)[i]);
}

static int str_cmp(const struct slot *a, const struct slot *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = ch_at(a, i), y = ch_at(b, i);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

/* Whether b occurs in a at offset off. */
static bool str_at(const struct slot *a, size_t off, const struct slot *b)
{
    if (off > a->n || b->n > a->n - off)
        return false;
    for (size_t i = 0; i < b->n; i++)
        if (ch_at(a, off + i) != ch_at(b, i))
            return false;
    return true;
}

static bool cstr_eq(const char *s, const struct slot *b)
{
    if (!s)
        s = "";
    size_t i = 0;
    for (; i < b->n; i++)
        if (s[i] == '\0' || (unsigned char)s[i] != ch_at(b, i))
            return false;
    return s[i] == '\0';
}

static bool cmp_true(enum cmp k, int r)
{
    switch (k) {
    case CMP_EQ:
        return r == 0;
    case CMP_NE:
        return r != 0;
    case CMP_LT:
        return r < 0;
    case CMP_LE:
        return r <= 0;
    case CMP_GT:
        return r > 0;
    default:
        return r >= 0;
    }
}

static void civil(const ly_expr_ctx *ctx, int64_t t, ly_civil *out)
{
    const ly_tz *z = ctx->tz;
    if (!z)
        ly_tz_get("UTC", &z);
    ly_tz_local_civil(z, t, out);
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* "YYYY-MM-DD" into month and day; false when it is not a valid date. */
static bool parse_birthdate(const struct slot *s, int *m, int *d)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s->p;
    if (s->n != 10 || p[4] != '-' || p[7] != '-')
        return false;
    int v[3] = {0, 0, 0}, part = 0;
    for (size_t i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            part++;
            continue;
        }
        if (!is_digit(p[i]))
            return false;
        v[part] = v[part] * 10 + (p[i] - '0');
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > mdays[v[1] - 1])
        return false;
    if (v[1] == 2 && v[2] == 29 && !leap(v[0]))
        return false;
    *m = v[1];
    *d = v[2];
    return true;
}

static void load_str(struct slot *s, const char *str)
{
    s->i = 0;
    s->p = str ? str : "";
    s->n = strlen(s->p);
}

static const char *attr(const char *const *keys, const char *const *values, size_t n,
                        const struct kstr *name)
{
    if (!keys || !values)
        return "";
    for (size_t i = 0; i < n; i++)
        if (keys[i] && strlen(keys[i]) == name->len && memcmp(keys[i], name->s, name->len) == 0)
            return values[i] ? values[i] : "";
    return "";
}

/* A run-time failure of instruction pc: its source position is the field. */
static int run_error(ly_error *err, const ly_expr *e, size_t pc, const char *code, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));

static int run_error(ly_error *err, const ly_expr *e, size_t pc, const char *code, const char *fmt,
                     ...)
{
    char field[32], msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(field, sizeof field, "%u:%u", (unsigned)(e->pos[pc] >> 16),
             (unsigned)(e->pos[pc] & 0xffff));
    return ly_error_set(err, LY_EREFUSED, code, field, "%s", msg);
}

#define overflow(err, op)                                                                          \
    run_error(err, e, pc, "expression_overflow", "integer overflow in \"%s\"", op)

/* Evaluates e; *first_top, when given, receives the instruction of the
 * first OP_JF_TOP that jumped (SIZE_MAX if none did). */
static int run(const ly_expr *e, const ly_expr_ctx *ctx, ly_expr_value *out, ly_error *err,
               size_t *first_top)
{
    struct slot st[MAX_STACK + 1];
    size_t sp = 0; /* st[sp - 1] is the top */
    ly_civil cv, cv2;
    for (size_t pc = 0; pc < e->ncode; pc++) {
        uint32_t ins = e->code[pc], arg = ins >> 8;
        struct slot *a = sp >= 2 ? &st[sp - 2] : NULL, *b = sp >= 1 ? &st[sp - 1] : NULL;
        int64_t r;
        switch ((enum op)(ins & 0xff)) {
        case OP_INT:
            st[sp++] = (struct slot){.i = e->ints[arg]};
            break;
        case OP_STR:
            st[sp++] = (struct slot){.p = e->strs[arg].s, .n = e->strs[arg].len};
            break;
        case OP_LIST:
            st[sp++] = (struct slot){.p = e->lists[arg].items, .n = e->lists[arg].n};
            break;
        case OP_BOOL:
            st[sp++] = (struct slot){.i = arg};
            break;
        case OP_LOAD: {
            const struct name *nm = &names[arg];
            const char *base = (const char *)ctx;
            if (nm->kind >= I_STR) {
                if (!ctx->item)
                    return run_error(err, e, pc, "expression_error", "%s used without an item",
                                     nm->name);
                base = (const char *)ctx->item;
            }
            struct slot *s = &st[sp++];
            switch (nm->kind) {
            case K_STR:
            case I_STR: {
                const char *str;
                memcpy(&str, base + nm->off, sizeof str);
                load_str(s, str);
                break;
            }
            case K_INT:
            case I_INT:
                memcpy(&s->i, base + nm->off, sizeof s->i);
                break;
            default: {
                const char *const *list;
                memcpy(&list, base + nm->off, sizeof list);
                memcpy(&s->n, base + nm->noff, sizeof s->n);
                s->p = list;
                s->i = 0;
                if (!list)
                    s->n = 0;
                break;
            }
            }
            break;
        }
        case OP_EVATTR:
            load_str(&st[sp++], attr(ctx->event_attr_names, ctx->event_attr_values,
                                     ctx->nevent_attrs, &e->strs[arg]));
            break;
        case OP_MEMATTR:
            load_str(&st[sp++], attr(ctx->member_attr_names, ctx->member_attr_values,
                                     ctx->nmember_attrs, &e->strs[arg]));
            break;
        case OP_NEG:
            if (__builtin_sub_overflow((int64_t)0, b->i, &b->i))
                return overflow(err, "-");
            break;
        case OP_NOT:
            b->i = !b->i;
            break;
        case OP_ADD:
            if (__builtin_add_overflow(a->i, b->i, &a->i))
                return overflow(err, "+");
            sp--;
            break;
        case OP_SUB:
            if (__builtin_sub_overflow(a->i, b->i, &a->i))
                return overflow(err, "-");
            sp--;
            break;
        case OP_MUL:
            if (__builtin_mul_overflow(a->i, b->i, &a->i))
                return overflow(err, "*");
            sp--;
            break;
        case OP_DIV:
        case OP_MOD:
            if (b->i == 0)
                return run_error(err, e, pc, "expression_error", "division by zero");
            if (a->i == INT64_MIN && b->i == -1)
                return overflow(err, (ins & 0xff) == OP_DIV ? "/" : "%");
            a->i = (ins & 0xff) == OP_DIV ? a->i / b->i : a->i % b->i;
            sp--;
            break;
        case OP_CMP_INT:
            a->i = cmp_true(arg, a->i < b->i ? -1 : a->i > b->i);
            sp--;
            break;
        case OP_CMP_STR:
            a->i = cmp_true(arg, str_cmp(a, b));
            a->p = NULL;
            a->n = 0;
            sp--;
            break;
        case OP_HAS_TAG: /* has_tag(list, s) is `s in list` */
        case OP_IN_LSTR: {
            const struct slot *needle = (ins & 0xff) == OP_HAS_TAG ? b : a;
            const struct slot *list = (ins & 0xff) == OP_HAS_TAG ? a : b;
            const char *const *items = list->p;
            r = 0;
            for (size_t i = 0; i < list->n && !r; i++)
                r = cstr_eq(items[i], needle);
            *a = (struct slot){.i = r};
            sp--;
            break;
        }
        case OP_IN_LINT: {
            const int64_t *items = b->p;
            r = 0;
            for (size_t i = 0; i < b->n && !r; i++)
                r = items[i] == a->i;
            *a = (struct slot){.i = r};
            sp--;
            break;
        }
        case OP_IN_STR:
            r = 0;
            for (size_t off = 0; off + a->n <= b->n && !r; off++)
                r = str_at(b, off, a);
            *a = (struct slot){.i = r};
            sp--;
            break;
        case OP_STARTS_WITH:
            r = str_at(a, 0, b);
            *a = (struct slot){.i = r};
            sp--;
            break;
        case OP_JF_TOP:
            if (!b->i && first_top && *first_top == SIZE_MAX)
                *first_top = pc;
            __attribute__((fallthrough));
        case OP_JF_OR_POP:
            if (!b->i)
                pc = arg - 1;
            else
                sp--;
            break;
        case OP_JT_OR_POP:
            if (b->i)
                pc = arg - 1;
            else
                sp--;
            break;
        case OP_WEEKDAY:
            civil(ctx, b->i, &cv);
            b->i = cv.weekday;
            break;
        case OP_HOUR:
            civil(ctx, b->i, &cv);
            b->i = cv.hour;
            break;
        case OP_MONTH:
            civil(ctx, b->i, &cv);
            b->i = cv.month;
            break;
        case OP_DAY:
            civil(ctx, b->i, &cv);
            b->i = cv.day;
            break;
        case OP_DAYS_BETWEEN:
            civil(ctx, a->i, &cv);
            civil(ctx, b->i, &cv2);
            a->i = ly_days_from_civil(cv2.year, (unsigned)cv2.month, (unsigned)cv2.day) -
                   ly_days_from_civil(cv.year, (unsigned)cv.month, (unsigned)cv.day);
            sp--;
            break;
        case OP_IS_BIRTHDAY: {
            int bm, bd;
            r = 0;
            if (parse_birthdate(a, &bm, &bd)) {
                civil(ctx, b->i, &cv);
                r = (cv.month == bm && cv.day == bd) ||
                    (bm == 2 && bd == 29 && cv.month == 2 && cv.day == 28 && !leap(cv.year));
            }
            *a = (struct slot){.i = r};
            sp--;
            break;
        }
        case OP_LOWER:
            b->i = 1;
            break;
        default:
            return ly_error_set(err, LY_EINTERNAL, "internal_error", "", "bad instruction");
        }
    }
    memset(out, 0, sizeof *out);
    out->type = e->type;
    struct slot *v = &st[0];
    switch (e->type) {
    case LY_T_STR:
        out->s = v->p;
        out->len = v->n;
        if (v->i) {
            if (!ctx->scratch || ctx->scratch_size <= v->n)
                return ly_error_set(err, LY_EREFUSED, "expression_error", "",
                                    "the value does not fit the scratch buffer");
            for (size_t i = 0; i < v->n; i++)
                ctx->scratch[i] = (char)ch_at(v, i);
            ctx->scratch[v->n] = '\0';
            out->s = ctx->scratch;
        }
        break;
    case LY_T_LIST_STR:
        out->list_s = v->p;
        out->len = v->n;
        break;
    case LY_T_LIST_INT:
        out->list_i = v->p;
        out->len = v->n;
        break;
    default:
        out->i = v->i;
        break;
    }
    return 0;
}

int ly_expr_eval(const ly_expr *e, const ly_expr_ctx *ctx, ly_expr_value *out, ly_error *err)
{
    if (!e || !ctx || !out)
        return ly_error_set(err, LY_EINVAL, "invalid_request", "", "missing argument");
    return run(e, ctx, out, err, NULL);
}

int ly_expr_explain(const ly_expr *e, const ly_expr_ctx *ctx, char *buf, size_t size, ly_error *err)
{
    if (!e || !ctx || !buf || size == 0)
        return ly_error_set(err, LY_EINVAL, "invalid_request", "", "missing argument");
    buf[0] = '\0';
    if (e->type != LY_T_BOOL)
        return ly_error_set(err, LY_EINVAL, "type_error", "", "the expression is not a condition");
    size_t jumped = SIZE_MAX;
    ly_expr_value v;
    int rc = run(e, ctx, &v, err, &jumped);
    if (rc != 0 || v.i)
        return rc;
    /* The condition that failed is the one the first top-level jump follows,
     * or the last one when no jump was taken. */
    size_t k = 0;
    for (size_t pc = 0; pc < e->ncode && pc < jumped; pc++)
        if ((e->code[pc] & 0xff) == OP_JF_TOP)
            k++;
    if (k >= e->nconds)
        k = e->nconds - 1;
    const struct span *sp = &e->conds[k];
    size_t len = sp->end - sp->start;
    if (len < size) {
        memcpy(buf, e->src + sp->start, len);
        buf[len] = '\0';
    } else {
        memcpy(buf, e->src + sp->start, size - 1);
        buf[size - 1] = '\0';
        if (size >= 4)
            memcpy(buf + size - 4, "...", 3);
    }
    return 0;
}
