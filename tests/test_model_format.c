/*
 * test_model_format.c — the model description format (src/nn/model.c) and
 * the built-in models (models/NAME.ibm, src/nn/model_builtin.c): every
 * built-in parses, builds and has its exact parameter count; the files
 * and the embedded copies agree; each kind of malformed input is rejected
 * with IB_ERR_FORMAT and the right line; the canonical text round-trips;
 * two graphs from one model and store share the parameters; parameter
 * names and shapes, and the outputs of the residual blocks, agree with the
 * equivalent PyTorch modules (tests/fixtures/model_format.txt, made by
 * tests/ref/make_model_format_ref.py).
 */
#include "test.h"
#include "core/internal.h"

#include <dirent.h>

/* ---- built-ins ---- */

static const struct {
    const char *name;
    int64_t params; /* trainable scalars, derived by hand below */
    int bottlenecks;
} expected[] = {
    /* 785*1024 + 1025*1024 + 1025*10 */
    {"mlp", 1863690, 0},
    /* 785*1024 + 1025*1024 + 1025*512 + 257*10 */
    {"vib-mlp", 2380810, 1},
    /* 32*25+32 + 64*32*25+64 + 3137*1024 + 1025*10 */
    {"lenet", 3274634, 0},
    /* lenet with fc2 1025*512 and a decoder 257*10 */
    {"lenet-vib", 3791754, 1},
    /* lenet + two cells of 2*(C*C + C), C = 32, 64 */
    {"lenet-vibcells", 3285066, 2},
    /* convs 1,144,512 + BN 1,792 + 4097*512 + 513*10 */
    {"vgg-small", 3249098, 0},
    /* He et al. 2016 report 0.27M (option A shortcuts, as here) */
    {"resnet20", 269722, 0},
    /* resnet20 - fc (650) + enc 65*128 + decoder 65*10 */
    {"resnet20-vib", 278042, 1},
    /* resnet20 + cells 2*(C*C+C) for C = 16, 32, 64 */
    {"resnet20-vibcells", 280698, 3},
    /* He et al.: 0.46M */
    {"resnet32", 464154, 0},
    /* He et al.: 0.85M */
    {"resnet56", 853018, 0},
    /* the usual CIFAR ResNet-18 with 1x1-conv+BN shortcuts: 11.17M */
    {"resnet18", 11173962, 0},
    /* Zagoruyko & Komodakis 2016: 2.7M; 2,748,890 exactly */
    {"wrn-16-4", 2748890, 0},
    /* + cells 2*(C*C+C) for C = 64, 128, 256 */
    {"wrn-16-4-vibcells", 2921818, 3},
    /* mlp's fc1, fc2 (1,853,440) + head1 1025*1024 + head2 1025*512 + decoder 257*10 */
    {"mlp-vubhead", 3430410, 1},
    /* resnet20 - fc (650) + head1 65*256 + head2 257*128 + decoder 65*10 */
    {"resnet20-vubhead", 319258, 1},
    /* 785*512 + 512 (prior) + 513*512 + 512 + 513*10 */
    {"imb-mlp", 670730, 0},
    /* conv 416 + 12,832 + fc1 1569*128 + vsdhead: teacher 1,290, encoder 16,512 + 256 + 8,256,
     * student 528 + 32 + 170 */
    {"cnn-vsd", 241124, 1},
    /* resnet20 - fc (650) + vsdhead: teacher 650, encoder 16,640 + 512 + 32,896 + 256 + 16,512,
     * student 2,080 + 64 + 330 */
    {"resnet20-vsd", 339012, 1},
    /* stem 16*9 + bn 32; blocks 2*(C_in*C*9 + 2C): 4,672 + 13,952 + 55,552; fc 65*10 */
    {"resnet8-mnist", 75002, 0},
};
#define N_EXPECTED ((int)(sizeof expected / sizeof expected[0]))

static void test_builtin_list(void)
{
    CHECK_EQ_INT(ib_model_builtin_count(), N_EXPECTED);
    for (int i = 0; i < N_EXPECTED; i++) {
        CHECK_MSG(!strcmp(ib_model_builtin_name(i), expected[i].name), "built-in %d is '%s', expected '%s'", i,
                  ib_model_builtin_name(i), expected[i].name);
        CHECK(ib_model_builtin_text(expected[i].name) != NULL);
    }
    CHECK(ib_model_builtin_name(N_EXPECTED) == NULL);
    CHECK(ib_model_builtin_name(-1) == NULL);
    CHECK(ib_model_builtin_text("no-such-model") == NULL);
}

/* models/NAME.ibm is the source of truth; the library embeds a copy. */
static void test_builtin_files_match(void)
{
    char dir[1024], path[1024 + 1 + 256]; /* dir, "/", a d_name */
    ib_test_path("models", dir, sizeof dir);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    int files = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".ibm"))
            continue;
        files++;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 4), de->d_name);
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        char *text = ib__read_file(path, 1 << 20, NULL);
        CHECK(text != NULL);
        const char *embedded = ib_model_builtin_text(name);
        CHECK_MSG(embedded && !strcmp(embedded, text),
                  "models/%s differs from the copy in src/nn/model_builtin.c: run sh models/embed.sh", de->d_name);
        ib_model *m = NULL;
        CHECK_OK(ib_model_load(path, &m));
        CHECK_MSG(!strcmp(ib_model_name(m), name), "models/%s says 'model %s'", de->d_name, ib_model_name(m));
        ib_model_free(m);
        free(text);
    }
    closedir(d);
    CHECK_EQ_INT(files, ib_model_builtin_count());
}

static void test_builtins_build(void)
{
    for (int i = 0; i < N_EXPECTED; i++) {
        ib_model *m = NULL;
        CHECK_OK(ib_model_load(expected[i].name, &m));
        CHECK_MSG(ib_model_param_count(m) == expected[i].params, "%s: %lld parameters, expected %lld",
                  expected[i].name, (long long)ib_model_param_count(m), (long long)expected[i].params);
        CHECK_EQ_INT(ib_model_bottleneck_count(m), expected[i].bottlenecks);
        int c, h, w;
        ib_model_input_shape(m, &c, &h, &w);
        ib_params *p = ib_params_new(1);
        ib_graph *g = ib_graph_new(p);
        ib_node *x = ib_input(g, "x", 4, (int64_t[]){2, c, h, w});
        ib_model_out out;
        CHECK_OK(ib_model_build(m, g, x, NULL, &out));
        CHECK_MSG(ib_params_trainable_total(p) == expected[i].params, "%s: the store holds %lld, expected %lld",
                  expected[i].name, (long long)ib_params_trainable_total(p), (long long)expected[i].params);
        CHECK_EQ_INT(out.n_bottlenecks, expected[i].bottlenecks);
        for (int b = 0; b < out.n_bottlenecks; b++) {
            CHECK(out.bn[b].z && out.bn[b].kl && out.bn[b].mu && out.bn[b].sigma);
            CHECK_EQ_INT(out.bn_depth[b], b + 1);
            CHECK(out.bn_beta[b] == -1.0f); /* no built-in sets beta= */
        }
        CHECK_EQ_INT(ib_node_ndim(out.logits), 2);
        CHECK_EQ_INT(ib_node_dim(out.logits, 0), 2);
        CHECK_EQ_INT(ib_node_dim(out.logits, 1), ib_model_classes(m));
        ib_test_compile_fill(g);
        CHECK_OK(ib_graph_forward(g));
        for (int64_t k = 0; k < ib_node_numel(out.logits); k++)
            CHECK_MSG(isfinite(ib_node_data(out.logits)[k]), "%s: logit %lld is not finite", expected[i].name,
                      (long long)k);
        ib_graph_free(g);
        ib_params_free(p);
        ib_model_free(m);
    }
}

/* ---- malformed descriptions ---- */

#define HDR "model t\ninput 1 4 4\nclasses 2\n" /* lines 1-3 */

static const struct bad {
    const char *text;
    int line;
    const char *msg; /* a part of the message */
} bad[] = {
    {HDR "flatten\nfoo 3\n", 5, "unknown layer 'foo'"},
    {HDR "init xavier\nflatten\nlinear 2\n", 4, "unknown style 'xavier'"},
    {HDR "init glorot\ninit glorot\nflatten\nlinear 2\n", 5, "'init' given twice (first at line 4)"},
    {HDR "init\nflatten\nlinear 2\n", 4, "expected 'init pytorch'"},
    {HDR "flatten\ninit glorot\nlinear 2\n", 5, "'init' must come before the first layer"},
    {HDR "flatten\nlinear 2 bais=false\n", 5, "unknown key 'bais'"},
    {HDR "flatten\nlinear 2x\n", 5, "OUT must be an integer"},
    {HDR "flatten\nlinear 0\n", 5, "OUT must be an integer"},
    {HDR "flatten\nlinear\n", 5, "missing OUT"},
    {HDR "flatten\nlinear 2 3\n", 5, "unexpected '3'"},
    {HDR "flatten\nlinear 2 bias=yes\n", 5, "true or false"},
    {HDR "flatten\nlinear 2 bias=false bias=true\n", 5, "given twice"},
    {HDR "flatten\ndropout p=1.5\nlinear 2\n", 5, "p must be a number"},
    {HDR "flatten\ndropout p=nan\nlinear 2\n", 5, "p must be a number"},
    {HDR "flatten\ndropout\nlinear 2\n", 5, "missing p="},
    {HDR "conv 4 k=3 stride=0\nflatten\nlinear 2\n", 4, "stride must be an integer"},
    {HDR "conv 4 k=3 pad=-1\nflatten\nlinear 2\n", 4, "pad must be an integer"},
    {HDR "conv 4\nflatten\nlinear 2\n", 4, "missing k="},
    {HDR "conv 4 k=7\nflatten\nlinear 2\n", 4, "does not fit"},
    {HDR "maxpool k=2 pad=2\nflatten\nlinear 2\n", 4, "pad must be at most"},
    {HDR "flatten\nlinear 5\nvib 2\nlinear 2\n", 6, "must output 2K = 4"},
    {HDR "flatten\nlinear 4\nvib 2 shift=inf\nlinear 2\n", 6, "shift must be a number"},
    {HDR "vibcell k=2\nflatten\nlinear 2\n", 4, "k must be odd"},
    {HDR "linear 2\n", 4, "needs flat features"},
    {HDR "flatten\nconv 2 k=1\n", 5, "needs a feature map"},
    {HDR "flatten\nlinear 3\n", 5, "asks for 2 logits"},
    {HDR "conv 2 k=1\n", 4, "the last layer outputs a 2x4x4 feature map"},
    {"model t\nclasses 2\nflatten\nlinear 2\n", 3, "missing 'input C H W'"},
    {"input 1 4 4\nclasses 2\n\nflatten\nlinear 2\n", 4, "missing 'model NAME'"},
    {"", 1, "missing 'model NAME'"},
    {HDR, 3, "no layers"},
    {HDR "flatten\nlinear 2\nclasses 3\n", 6, "must come before the first layer"},
    {"model t\ninput 1 4 4\ninput 1 4 4\n", 3, "given twice"},
    {"model t\ninput 1 4\nclasses 2\n", 2, "expected 'input C H W'"},
    {"model t t\n", 1, "expected 'model NAME'"},
    {"model t/x\n", 1, "model name must be"},
    {"model t\ninput 1 4 4\nclasses 0\n", 3, "classes must be"},
    {HDR "flatten\nrepeat 2\n  relu\nlinear 2\n", 5, "'repeat' has no matching 'end'"},
    {HDR "flatten\ngroup g\n  relu\nlinear 2\n", 5, "'group' has no matching 'end'"},
    {HDR "flatten\nend\nlinear 2\n", 5, "'end' without"},
    {HDR "flatten\nrepeat 2\nend\nlinear 2\n", 6, "empty repeat"},
    {HDR "flatten\nrepeat 0\nrelu\nend\nlinear 2\n", 5, "N must be an integer in 1..1000"},
    {HDR "flatten\nrepeat 1001\nrelu\nend\nlinear 2\n", 5, "N must be an integer in 1..1000"},
    {HDR "flatten\nrepeat 100\nrepeat 100\nrelu\nend\nend\nlinear 2\n", 5, "more than the limit"},
    {HDR "repeat 1\nrepeat 1\nrepeat 1\nrepeat 1\nrepeat 1\nrepeat 1\nrepeat 1\nrepeat 1\nrepeat 1\n", 12,
     "nested too deeply"},
    {HDR "flatten\nlinear 2 name=fc\nlinear 2 name=fc\n", 6, "already used at line 5"},
    {HDR "flatten\nrepeat 2\nlinear 2 name=fc\nend\n", 6, "inside a repeat"},
    {HDR "flatten\nlinear 2 name=a.b\n", 5, "name must be"},
    {HDR "flatten\nlinear 2 # comment\nlinear 2\tname=\n", 6, "name must be"},
    {HDR "flatten\nlinear 2\x01\n", 5, "unexpected byte 0x01"},
    {HDR "flatten\nlinear 2 =3\n", 5, "unknown key ''"},
    {HDR "relu relu\n", 4, "unexpected 'relu'"},
    {HDR "flatten\nlinear bias=false 2\n", 5, "must come before the key=value"},
    {HDR "linear 2 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", 4, "too many fields"},
    {HDR "conv 4 k=1\nbasicblock 2 shortcut=pad\nflatten\nlinear 2\n", 5, "cannot reduce 4 channels to 2"},
    {HDR "basicblock 4 shortcut=zero\nflatten\nlinear 2\n", 4, "shortcut must be conv or pad"},
    {"model t\ninput 1 1024 1024\nclasses 2\nflatten\nlinear 1048576\nlinear 2\n", 5, "parameters, the limit"},
    {"model t\ninput 1 4096 4096\nclasses 2\nconv 64 k=1\n", 4, "over the limit"},
};

static void check_bad(const char *text, int line, const char *msg, int idx)
{
    ib_model *m = (ib_model *)1;
    ib_status st = ib_model_parse(text, "t.ibm", &m);
    CHECK_MSG(st == IB_ERR_FORMAT, "case %d: status %d, expected IB_ERR_FORMAT", idx, (int)st);
    CHECK_MSG(m == NULL, "case %d: *out not NULL on error", idx);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "t.ibm:%d: ", line);
    const char *err = ib_last_error();
    CHECK_MSG(!strncmp(err, prefix, strlen(prefix)), "case %d: message '%s' does not start with '%s'", idx, err,
              prefix);
    CHECK_MSG(strstr(err, msg) != NULL, "case %d: message '%s' lacks '%s'", idx, err, msg);
}

static void test_malformed(void)
{
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++)
        check_bad(bad[i].text, bad[i].line, bad[i].msg, i);
}

static void test_limits(void)
{
    /* A line over the limit (1024 characters). */
    size_t n = strlen(HDR) + 2000;
    char *s = malloc(n + 64);
    strcpy(s, HDR "flatten\n#");
    size_t o = strlen(s);
    memset(s + o, 'x', 1500);
    strcpy(s + o + 1500, "\nlinear 2\n");
    check_bad(s, 5, "line longer than 1024", 1000);
    free(s);
    /* 33 VIB cells: more than IB_MAX_BOTTLENECKS. */
    char buf[4096];
    o = (size_t)snprintf(buf, sizeof buf, HDR);
    for (int i = 0; i < IB_MAX_BOTTLENECKS + 1; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "vibcell\n");
    snprintf(buf + o, sizeof buf - o, "flatten\nlinear 2\n");
    check_bad(buf, 4 + IB_MAX_BOTTLENECKS, "more than 32", 1001);
    /* Expansion limit reached by nesting, reported at the outer repeat. */
    check_bad(HDR "repeat 20\nrepeat 20\nrepeat 20\nrelu\nend\nend\nend\nflatten\nlinear 2\n", 4, "more than the limit",
              1002);
    /* A description over 1 MiB. */
    size_t big = (1u << 20) + 10;
    char *t = malloc(big + 1);
    memset(t, '\n', big);
    t[big] = 0;
    ib_model *m = NULL;
    CHECK(ib_model_parse(t, "big", &m) == IB_ERR_FORMAT);
    CHECK(strstr(ib_last_error(), "longer than") != NULL);
    free(t);
    CHECK(ib_model_parse(NULL, "x", &m) == IB_ERR_ARG);
}

static void test_load_errors(void)
{
    ib_model *m = NULL;
    CHECK(ib_model_load("resnet21", &m) == IB_ERR_ARG);
    CHECK(strstr(ib_last_error(), "resnet20") != NULL); /* the message lists the built-ins */
    CHECK(m == NULL);
    CHECK(ib_model_load("/no/such/file.ibm", &m) == IB_ERR_IO);
    CHECK(strstr(ib_last_error(), "/no/such/file.ibm") != NULL);
    char path[1200];
    ib_test_write_text("bad.ibm", "model bad\ninput 1 2 2\nclasses 2\nflatten\nlinear 3\n", path, sizeof path);
    CHECK(ib_model_load(path, &m) == IB_ERR_FORMAT);
    char prefix[1300];
    snprintf(prefix, sizeof prefix, "%s:5: ", path);
    CHECK_MSG(!strncmp(ib_last_error(), prefix, strlen(prefix)), "'%s' should start with '%s'", ib_last_error(),
              prefix);
}

/* ---- canonical text ---- */

static void check_round_trip(const char *text, const char *what)
{
    ib_model *a = NULL, *b = NULL;
    CHECK_OK(ib_model_parse(text, what, &a));
    CHECK_OK(ib_model_parse(ib_model_text(a), what, &b));
    CHECK_MSG(ib_model_equal(a, b), "%s: parse(text(m)) != m", what);
    CHECK_MSG(!strcmp(ib_model_text(a), ib_model_text(b)), "%s: the canonical text is not a fixed point", what);
    CHECK_EQ_INT(ib_model_param_count(a), ib_model_param_count(b));
    ib_model_free(a);
    ib_model_free(b);
}

static const char *every_layer =
    "# every layer kind and option, written untidily\n"
    "model every-layer\n"
    "  input 3 16 16   # C H W\n"
    "classes\t7\r\n"
    "conv 8 k=3 pad=1 stride=1 bias=false name=stem\n"
    "batchnorm\n"
    "leaky_relu slope=0.1\n"
    "group stage\n"
    "  repeat 2\n"
    "    basicblock 8\n"
    "  end\n"
    "  basicblock 12 stride=2 shortcut=pad\n"
    "  basicblock 16 shortcut=conv\n"
    "end\n"
    "vibcell k=3 shift=-4.5 beta=0.001\n"
    "wideblock 24 stride=2 dropout=0.3\n"
    "avgpool k=2 stride=1\n"
    "maxpool k=3 stride=2 pad=1\n"
    "softplus\n"
    "globalavgpool\n"
    "batchnorm\n"
    "tanh\n"
    "linear 20 bias=false\n"
    "sigmoid\n"
    "dropout p=0.25\n"
    "vib 10 shift=-5 beta=1e-3 name=z\n"
    "relu\n"
    "flatten\n"
    "linear 7\n";

static void test_round_trip(void)
{
    for (int i = 0; i < ib_model_builtin_count(); i++)
        check_round_trip(ib_model_builtin_text(ib_model_builtin_name(i)), ib_model_builtin_name(i));
    check_round_trip(every_layer, "every-layer");
    ib_model *a = NULL, *b = NULL;
    CHECK_OK(ib_model_parse(every_layer, "e", &a));
    /* Defaults written out, repeats expanded, the shortest exact floats. */
    const char *t = ib_model_text(a);
    CHECK(strstr(t, "model every-layer\ninput 3 16 16\nclasses 7\nconv 8 k=3 stride=1 pad=1 bias=false name=stem\n"));
    CHECK(strstr(t, "group stage\n  basicblock 8 stride=1 shortcut=conv\n  basicblock 8 stride=1 shortcut=conv\n"));
    CHECK(strstr(t, "vibcell k=3 shift=-4.5 beta=0.001\n"));
    CHECK(strstr(t, "leaky_relu slope=0.1\n"));
    CHECK(strstr(t, "vib 10 shift=-5 beta=0.001 name=z\n"));
    CHECK(strstr(t, "avgpool k=2 stride=1 pad=0\n"));
    CHECK(strstr(t, "repeat") == NULL && strchr(t, '#') == NULL);
    CHECK_EQ_INT(ib_model_bottleneck_count(a), 2);
    int64_t shape[3];
    CHECK_EQ_INT(ib_model_bottleneck_shape(a, 0, shape), 3);
    CHECK(shape[0] == 16 && shape[1] == 8 && shape[2] == 8);
    CHECK_EQ_INT(ib_model_bottleneck_shape(a, 1, shape), 1);
    CHECK_EQ_INT(shape[0], 10);
    CHECK_EQ_INT(ib_model_bottleneck_shape(a, 2, shape), 0);
    /* One option changed: not equal. */
    char *other = strdup(every_layer);
    *strstr(other, "slope=0.1") = 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%sslope=0.2%s", other, strstr(every_layer, "slope=0.1") + strlen("slope=0.1"));
    CHECK_OK(ib_model_parse(buf, "e2", &b));
    CHECK(!ib_model_equal(a, b));
    CHECK(ib_model_equal(a, a));
    free(other);
    ib_model_free(a);
    ib_model_free(b);
}

/* ---- building ---- */

static void check_param(ib_params *p, const char *name, int ndim, const int64_t *shape)
{
    int i = ib_params_find(p, name);
    CHECK_MSG(i >= 0, "no parameter '%s'", name);
    CHECK_EQ_INT(ib_params_ndim(p, i), ndim);
    for (int d = 0; d < ndim; d++)
        CHECK_MSG(ib_params_shape(p, i)[d] == shape[d], "'%s' dim %d is %lld, expected %lld", name, d,
                  (long long)ib_params_shape(p, i)[d], (long long)shape[d]);
}

static void test_build_shares_params(void)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load("resnet20-vibcells", &m));
    ib_params *p = ib_params_new(3);
    ib_graph *g2 = ib_graph_new(p), *g5 = ib_graph_new(p);
    ib_node *x2 = ib_input(g2, "x", 4, (int64_t[]){2, 3, 32, 32});
    ib_node *x5 = ib_input(g5, "x", 4, (int64_t[]){5, 3, 32, 32});
    ib_model_out o2, o5;
    CHECK_OK(ib_model_build(m, g2, x2, NULL, &o2));
    int count = ib_params_count(p);
    int64_t total = ib_params_total(p);
    CHECK_OK(ib_model_build(m, g5, x5, NULL, &o5));
    CHECK_EQ_INT(ib_params_count(p), count);
    CHECK_EQ_INT(ib_params_total(p), total);
    CHECK_EQ_INT(ib_params_trainable_total(p), ib_model_param_count(m));
    CHECK_EQ_INT(o5.n_bottlenecks, 3);
    CHECK(!strcmp(o5.bn_name[2], "cell3") && o5.bn_cell[2]);
    CHECK_EQ_INT(ib_node_dim(o5.logits, 0), 5);
    /* The same weights give the same logits for the same examples
     * (eval mode, mean path).  5e-5 relative: the two batch sizes may sum
     * in another order inside the GEMMs, a few float32 ulps per layer. */
    CHECK_OK(ib_graph_compile(g2));
    CHECK_OK(ib_graph_compile(g5));
    ib_test_fill(ib_node_data(x5), ib_node_numel(x5), -1, 1, 42);
    memcpy(ib_node_data(x2), ib_node_data(x5), (size_t)ib_node_numel(x2) * sizeof(float));
    ib_graph *gs[2] = {g2, g5};
    for (int k = 0; k < 2; k++) {
        ib_graph_set_training(gs[k], false);
        ib_graph_set_sampling(gs[k], false);
        CHECK_OK(ib_graph_forward(gs[k]));
    }
    for (int k = 0; k < 20; k++)
        CHECK_CLOSE(ib_node_data(o2.logits)[k], ib_node_data(o5.logits)[k], 5e-5, 1e-6);
    /* PyTorch-style names, a few spot checks (all of them: test_torch_names). */
    check_param(p, "conv1.weight", 4, (int64_t[]){16, 3, 3, 3});
    check_param(p, "layer2.0.conv1.weight", 4, (int64_t[]){32, 16, 3, 3});
    check_param(p, "layer3.2.bn2.running_var", 1, (int64_t[]){64});
    check_param(p, "cell2.mu.weight", 4, (int64_t[]){32, 32, 1, 1});
    check_param(p, "fc.weight", 2, (int64_t[]){10, 64});
    CHECK(ib_graph_find(g2, "cell1.z") != NULL);
    CHECK(ib_graph_find(g2, "layer1.2") != NULL);
    ib_graph_free(g2);
    ib_graph_free(g5);
    ib_params_free(p);
    ib_model_free(m);
}

/* The `init` line: Glorot-uniform weights and zero biases (TensorFlow's
 * default, Deep VIB's reference code), He-normal and zero biases, or
 * PyTorch's default; the line survives the canonical text (so a checkpoint
 * rebuilds the same model) and is omitted when it says the default. */
static void check_init_style(const char *style, double want_w_sd, bool zero_bias)
{
    char text[256];
    snprintf(text, sizeof text, "model t\ninput 1 32 32\nclasses 10\ninit %s\nflatten\nlinear 500 name=fc\n"
                                "linear 10 name=out\n", style);
    ib_model *m = NULL;
    CHECK_OK(ib_model_parse(text, "t.ibm", &m));
    bool dflt = !strcmp(style, "pytorch");
    CHECK_MSG((strstr(ib_model_text(m), "init ") != NULL) == !dflt, "%s: canonical text:\n%s", style,
              ib_model_text(m));
    check_round_trip(text, style);
    ib_params *p = ib_params_new(5);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){2, 1, 32, 32});
    ib_model_out o;
    CHECK_OK(ib_model_build(m, g, x, NULL, &o));
    /* The style is the model's, not left behind in the graph. */
    CHECK_EQ_INT(ib_graph_init_style(g), IB_INIT_STYLE_PYTORCH);
    int wi = ib_params_find(p, "fc.weight"), bi = ib_params_find(p, "fc.bias");
    CHECK(wi >= 0 && bi >= 0);
    const float *w = ib_params_value(p, wi), *b = ib_params_value(p, bi);
    int64_t n = 500 * 1024;
    double ss = 0, bmax = 0;
    for (int64_t i = 0; i < n; i++)
        ss += (double)w[i] * w[i];
    for (int i = 0; i < 500; i++)
        bmax = fmax(bmax, fabs(b[i]));
    /* 512,000 draws: the sample sd is within 0.5% of the true one. */
    CHECK_CLOSE(sqrt(ss / (double)n), want_w_sd, 5e-3, 0);
    CHECK_MSG(zero_bias ? bmax == 0 : bmax > 0.5 / sqrt(1024.0), "%s: max |bias| %g", style, bmax);
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
}

static void test_init_styles(void)
{
    /* fan_in 1024, fan_out 500.  PyTorch: U(+-1/sqrt(fan_in)), sd = bound/sqrt 3.
     * Glorot: U(+-sqrt(6/(fan_in+fan_out))).  He-normal: sd sqrt(2/fan_in). */
    check_init_style("pytorch", 1.0 / sqrt(1024.0) / sqrt(3.0), false);
    check_init_style("glorot", sqrt(6.0 / 1524.0) / sqrt(3.0), true);
    check_init_style("kaiming", sqrt(2.0 / 1024.0), true);
}

static void test_build_errors(void)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load("lenet", &m));
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_input(g, "x", 4, (int64_t[]){2, 3, 28, 28});
    ib_model_out out;
    CHECK(ib_model_build(m, g, x, NULL, &out) == IB_ERR_SHAPE);
    CHECK(strstr(ib_graph_error(g), "(N, 1, 28, 28)") != NULL);
    CHECK(out.logits == NULL);
    ib_graph_free(g);
    /* Noise given as inputs: the mean path is z = mu + sigma * 0. */
    ib_model_free(m);
    CHECK_OK(ib_model_load("vib-mlp", &m));
    g = ib_graph_new(p);
    x = ib_input(g, "x", 4, (int64_t[]){3, 1, 28, 28});
    ib_node *eps = ib_input(g, "eps", 2, (int64_t[]){3, 256});
    CHECK_OK(ib_model_build(m, g, x, (ib_node *[]){eps}, &out));
    CHECK(!strcmp(out.bn_name[0], "vib") && !out.bn_cell[0]);
    CHECK(ib_graph_find(g, "vib.mu") == out.bn[0].mu);
    ib_test_compile_fill(g);
    memset(ib_node_data(eps), 0, 3 * 256 * sizeof(float));
    CHECK_OK(ib_graph_forward(g));
    for (int k = 0; k < 3 * 256; k++)
        CHECK(ib_node_data(out.bn[0].z)[k] == ib_node_data(out.bn[0].mu)[k]);
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
}

/* ---- PyTorch equivalence ---- */

/* Every tensor of the torch state_dict (num_batches_tracked aside) is in
 * the store under the same name with the same shape, and nothing else. */
static void test_torch_names(void)
{
    ib_fixture *fx = ib_fixture_load("model_format.txt");
    static const char *const models[] = {"resnet20", "resnet18", "wrn-16-4", "vgg-small", "lenet-vibcells",
                                         "vib-mlp"};
    for (int k = 0; k < (int)(sizeof models / sizeof models[0]); k++) {
        ib_model *m = NULL;
        CHECK_OK(ib_model_load(models[k], &m));
        int c, h, w;
        ib_model_input_shape(m, &c, &h, &w);
        ib_params *p = ib_params_new(0);
        ib_graph *g = ib_graph_new(p);
        ib_model_out out;
        CHECK_OK(ib_model_build(m, g, ib_input(g, "x", 4, (int64_t[]){1, c, h, w}), NULL, &out));
        char key[256];
        snprintf(key, sizeof key, "%s.count", models[k]);
        CHECK_EQ_INT(ib_fixture_get(fx, key, NULL)[0], ib_params_count(p));
        snprintf(key, sizeof key, "%s.trainable", models[k]);
        CHECK_EQ_INT(ib_fixture_get(fx, key, NULL)[0], ib_params_trainable_total(p));
        for (int i = 0; i < ib_params_count(p); i++) {
            snprintf(key, sizeof key, "%s:%s", models[k], ib_params_name(p, i));
            int64_t nd = 0;
            const float *shape = ib_fixture_get(fx, key, &nd);
            CHECK_EQ_INT(nd, ib_params_ndim(p, i));
            for (int d = 0; d < nd; d++)
                CHECK_MSG(shape[d] == (float)ib_params_shape(p, i)[d], "%s dim %d: torch %g, ibnet %lld", key, d,
                          shape[d], (long long)ib_params_shape(p, i)[d]);
        }
        ib_graph_free(g);
        ib_params_free(p);
        ib_model_free(m);
    }
    ib_fixture_free(fx);
}

/* Residual blocks (identity, pad and conv shortcuts, the wide block)
 * against PyTorch: training-mode forward and the input gradient.
 * Tolerance 1e-4 relative plus 1e-6 of the tensor's scale: float32 sums
 * in another order through ~10 layers with batch norm. */
static void test_torch_blocks(void)
{
    ib_fixture *fx = ib_fixture_load("model_format.txt");
    const char *desc = "model blocks\ninput 3 8 8\nclasses 5\n"
                       "conv 4 k=3 pad=1 bias=false name=conv1\nbatchnorm name=bn1\nrelu\n"
                       "basicblock 4\n"
                       "basicblock 8 stride=2 shortcut=pad\n"
                       "basicblock 12 stride=2\n"
                       "wideblock 16\n"
                       "wideblock 16\n"
                       "maxpool k=2\n"
                       "leaky_relu slope=0.2\n"
                       "globalavgpool\n"
                       "linear 5 name=fc\n";
    ib_model *m = NULL;
    CHECK_OK(ib_model_parse(desc, "blocks", &m));
    ib_params *p = ib_params_new(0);
    ib_graph *g = ib_graph_new(p);
    ib_node *x = ib_node_set_requires_grad(ib_input(g, "x", 4, (int64_t[]){4, 3, 8, 8}), true);
    ib_node *y = ib_input_labels(g, "y", 4);
    ib_model_out out;
    CHECK_OK(ib_model_build(m, g, x, NULL, &out));
    ib_node *loss = ib_cross_entropy(g, out.logits, y, 0.0f);
    CHECK_OK(ib_graph_compile(g));
    CHECK_EQ_INT(ib_params_trainable_total(p), ib_model_param_count(m));
    for (int i = 0; i < ib_params_count(p); i++) {
        if (ib_params_kind(p, i) != IB_PARAM_TRAINABLE)
            continue;
        char key[256];
        snprintf(key, sizeof key, "blocks.%s", ib_params_name(p, i));
        int64_t n = 0;
        const float *v = ib_fixture_get(fx, key, &n);
        CHECK_EQ_INT(n, ib_params_numel(p, i));
        memcpy(ib_params_value(p, i), v, (size_t)n * sizeof(float));
    }
    int64_t n = 0;
    const float *v = ib_fixture_get(fx, "blocks.x", &n);
    memcpy(ib_node_data(x), v, (size_t)n * sizeof(float));
    v = ib_fixture_get(fx, "blocks.y", &n);
    for (int k = 0; k < 4; k++)
        ib_node_labels(y)[k] = (int32_t)v[k];
    CHECK_OK(ib_graph_forward(g));
    ib_params_zero_grad(p);
    CHECK_OK(ib_graph_backward(g, loss));
    const char *names[2] = {"blocks.logits", "blocks.dx"};
    float *got[2] = {ib_node_data(out.logits), ib_node_grad(x)};
    for (int k = 0; k < 2; k++) {
        const float *want = ib_fixture_get(fx, names[k], &n);
        double scale = 0;
        for (int64_t i = 0; i < n; i++)
            scale = fmax(scale, fabs(want[i]));
        ib_test_compare(names[k], got[k], want, n, 1e-4, 1e-6 * scale);
    }
    ib_graph_free(g);
    ib_params_free(p);
    ib_model_free(m);
    ib_fixture_free(fx);
}

/* ---- VIB cells placed by name (ib_model_add_cells) and the layer table ---- */

/* The text after the `model NAME` line: the layers and the rest of the header. */
static const char *after_header(const char *text)
{
    const char *nl = strchr(text, '\n');
    return nl ? nl + 1 : text;
}

static void test_add_cells(void)
{
    ib_model *plain = NULL, *cells = NULL, *builtin = NULL, *m = NULL;
    CHECK_OK(ib_model_load("resnet20", &plain));
    CHECK_OK(ib_model_load("resnet20-vibcells", &builtin));
    /* After each stage: exactly the built-in resnet20-vibcells, names included. */
    CHECK_OK(ib_model_add_cells(plain, " layer1, layer2,layer3 ", &cells));
    CHECK(!strcmp(ib_model_name(cells), "resnet20-cells"));
    CHECK(!strcmp(after_header(ib_model_text(cells)), after_header(ib_model_text(builtin))));
    CHECK_EQ_INT(ib_model_param_count(cells), 280698);
    CHECK_EQ_INT(ib_model_bottleneck_count(cells), 3);
    CHECK_EQ_INT(ib_model_bottleneck_count(plain), 0); /* the input is unchanged */
    ib_model_free(cells);

    /* GROUP.* follows every layer of the group; a block inside a group; depth order. */
    CHECK_OK(ib_model_add_cells(plain, "layer3.1,layer1.*", &cells));
    CHECK_EQ_INT(ib_model_bottleneck_count(cells), 4);
    CHECK_EQ_INT(ib_model_param_count(cells), 269722 + 3 * 2 * (16 * 16 + 16) + 2 * (64 * 64 + 64));
    char *table = ib_model_summary(cells);
    CHECK(table != NULL);
    if (table) {
        CHECK(strstr(table, "\nlayer1.cell1 ") && strstr(table, "\nlayer1.cell3 ") && strstr(table, "\nlayer3.cell4 "));
        CHECK(strstr(table, "\nlayer1.4 ")); /* the cells take places in the sequence */
        CHECK(strstr(table, "279,674 trainable parameters, 4 bottlenecks"));
        CHECK(strstr(table, "\nlayer3.cell4                     vibcell       64x8x8                8,320\n"));
    }
    free(table);
    ib_model_free(cells);

    /* A model that has cells: the new ones skip the names taken. */
    CHECK_OK(ib_model_add_cells(builtin, "conv1", &cells));
    CHECK_EQ_INT(ib_model_bottleneck_count(cells), 4);
    CHECK(strstr(ib_model_text(cells), "name=conv1\nvibcell k=1 shift=-5 name=cell4\n") != NULL);
    ib_model_free(cells);

    /* Mistakes: each a clear IB_ERR_ARG, nothing built. */
    const char *bad[] = {"fc", "layer4", "layer1,layer1", "layer1.2,layer1.*", "conv1.*", "", " , ", "6"};
    const char *why[] = {"flat features", "no layer of that name", "named twice", "named twice", "not a group",
                         "empty", "empty", "flat features"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = (ib_model *)1;
        CHECK_EQ_INT(ib_model_add_cells(plain, bad[i], &m), IB_ERR_ARG);
        CHECK(m == NULL);
        CHECK_MSG(strstr(ib_last_error(), why[i]) != NULL, "'%s': %s", bad[i], ib_last_error());
    }
    /* vib-mlp is flat from its first layer: no place for a cell. */
    ib_model *mlp = NULL;
    CHECK_OK(ib_model_load("vib-mlp", &mlp));
    CHECK_EQ_INT(ib_model_add_cells(mlp, "fc1", &m), IB_ERR_ARG);
    ib_model_free(mlp);
    ib_model_free(plain);
    ib_model_free(builtin);
}

/* ---- the structured layer listing ---- */

/* The body of the canonical text (after the header), rebuilt from the
 * listing alone: the listing must carry everything the text says. */
static char *text_from_listing(const ib_model *m)
{
    size_t cap = 1 << 20, o = 0;
    char *out = malloc(cap);
    int next[16] = {0}, prev_depth = 0;
    out[0] = 0;
    for (int i = 0; i < ib_model_layer_count(m); i++) {
        ib_model_layer_info info;
        CHECK_OK(ib_model_layer(m, i, &info));
        for (int d = prev_depth; d > info.depth; d--)
            o += (size_t)snprintf(out + o, cap - o, "%*send\n", 2 * (d - 1), "");
        prev_depth = info.depth;
        const char *leaf = strrchr(info.name, '.');
        leaf = leaf ? leaf + 1 : info.name;
        char index[16];
        snprintf(index, sizeof index, "%d", next[info.depth]++);
        o += (size_t)snprintf(out + o, cap - o, "%*s", 2 * info.depth, "");
        if (!strcmp(info.kind, "group")) {
            o += (size_t)snprintf(out + o, cap - o, "group %s\n", leaf);
            prev_depth = info.depth + 1;
            next[prev_depth] = 0;
            continue;
        }
        o += (size_t)snprintf(out + o, cap - o, "%s", info.kind);
        if (info.arg)
            o += (size_t)snprintf(out + o, cap - o, " %lld", (long long)info.arg);
        for (int j = 0; j < info.n_options; j++) {
            const char *key = NULL;
            char value[48];
            CHECK_OK(ib_model_layer_option(m, i, j, &key, value, sizeof value));
            o += (size_t)snprintf(out + o, cap - o, " %s=%s", key, value);
        }
        if (strcmp(leaf, index))
            o += (size_t)snprintf(out + o, cap - o, " name=%s", leaf);
        o += (size_t)snprintf(out + o, cap - o, "\n");
    }
    for (int d = prev_depth; d > 0; d--)
        o += (size_t)snprintf(out + o, cap - o, "%*send\n", 2 * (d - 1), "");
    return out;
}

static const char *after_header_lines(const char *text)
{
    while (!strncmp(text, "model ", 6) || !strncmp(text, "input ", 6) || !strncmp(text, "classes ", 8) ||
           !strncmp(text, "init ", 5)) {
        const char *nl = strchr(text, '\n');
        text = nl ? nl + 1 : text + strlen(text);
    }
    return text;
}

/* Every built-in: the listing gives back the canonical text, a shape
 * chain from the input to the logits, the parameter count, the
 * bottlenecks, and exactly the tensors (names, shapes, kinds, order) that
 * building the model creates in a store. */
static void test_layer_listing_builtins(void)
{
    for (int b = 0; b < ib_model_builtin_count(); b++) {
        const char *name = ib_model_builtin_name(b);
        ib_model *m = NULL;
        CHECK_OK(ib_model_load(name, &m));
        char *body = text_from_listing(m);
        CHECK_MSG(!strcmp(body, after_header_lines(ib_model_text(m))), "%s: the listing gives\n%s\nthe text is\n%s",
                  name, body, ib_model_text(m));
        free(body);

        int c, h, w;
        ib_model_input_shape(m, &c, &h, &w);
        ib_params *p = ib_params_new(1);
        ib_graph *g = ib_graph_new(p);
        ib_model_out out;
        CHECK_OK(ib_model_build(m, g, ib_input(g, "x", 4, (int64_t[]){1, c, h, w}), NULL, &out));

        int64_t shape[3] = {c, h, w}, params = 0;
        int ndim = 3, tensor = 0, bottlenecks = 0;
        for (int i = 0; i < ib_model_layer_count(m); i++) {
            ib_model_layer_info info;
            CHECK_OK(ib_model_layer(m, i, &info));
            if (!strcmp(info.kind, "group")) {
                CHECK_EQ_INT(info.n_tensors, 0);
                CHECK_EQ_INT(info.out_ndim, 0);
                continue;
            }
            CHECK_MSG(info.in_ndim == ndim && !memcmp(info.in, shape, sizeof shape), "%s %s: input shape", name,
                      info.name);
            ndim = info.out_ndim;
            memcpy(shape, info.out, sizeof shape);
            if (ndim == 1)
                CHECK(shape[1] == 0 && shape[2] == 0);
            if (info.bottleneck) {
                CHECK_MSG(bottlenecks < out.n_bottlenecks && !strcmp(out.bn_name[bottlenecks], info.name),
                          "%s: bottleneck %d is %s", name, bottlenecks, info.name);
                bottlenecks++;
            }
            int64_t layer_params = 0;
            for (int j = 0; j < info.n_tensors; j++, tensor++) {
                ib_model_tensor t;
                CHECK_OK(ib_model_layer_tensor(m, i, j, &t));
                CHECK_MSG(tensor < ib_params_count(p) && !strcmp(t.name, ib_params_name(p, tensor)),
                          "%s: tensor %d is '%s' in the listing, '%s' in the store", name, tensor, t.name,
                          tensor < ib_params_count(p) ? ib_params_name(p, tensor) : "(none)");
                CHECK(!strncmp(t.name, info.name, strlen(info.name)) && t.name[strlen(info.name)] == '.');
                CHECK_EQ_INT(t.ndim, ib_params_ndim(p, tensor));
                CHECK(!memcmp(t.shape, ib_params_shape(p, tensor), (size_t)t.ndim * sizeof(int64_t)));
                CHECK_EQ_INT(t.trainable, ib_params_kind(p, tensor) == IB_PARAM_TRAINABLE);
                if (t.trainable)
                    layer_params += ib_params_numel(p, tensor);
            }
            CHECK_MSG(layer_params == info.params, "%s %s: %lld parameters listed, %lld counted", name, info.name,
                      (long long)layer_params, (long long)info.params);
            params += info.params;
        }
        CHECK_EQ_INT(tensor, ib_params_count(p));
        CHECK_EQ_INT(params, ib_model_param_count(m));
        CHECK_EQ_INT(bottlenecks, ib_model_bottleneck_count(m));
        CHECK(ndim == 1 && shape[0] == ib_model_classes(m));
        ib_graph_free(g);
        ib_params_free(p);
        ib_model_free(m);
    }
}

/* Chosen items by value, and the calls' errors. */
static void test_layer_listing_values(void)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load("resnet20", &m));
    int n = ib_model_layer_count(m);
    ib_model_layer_info info;
    int found = 0;
    for (int i = 0; i < n; i++) {
        CHECK_OK(ib_model_layer(m, i, &info));
        if (!strcmp(info.name, "layer2")) {
            found++;
            CHECK(!strcmp(info.kind, "group"));
            CHECK_EQ_INT(info.depth, 0);
        }
        if (strcmp(info.name, "layer2.0"))
            continue;
        found++;
        CHECK(!strcmp(info.kind, "basicblock"));
        CHECK_EQ_INT(info.depth, 1);
        CHECK_EQ_INT(info.arg, 32);
        CHECK_EQ_INT(info.n_options, 2);
        const char *key = NULL;
        char value[8];
        CHECK_OK(ib_model_layer_option(m, i, 0, &key, value, sizeof value));
        CHECK(!strcmp(key, "stride") && !strcmp(value, "2"));
        CHECK_OK(ib_model_layer_option(m, i, 1, &key, value, sizeof value));
        CHECK(!strcmp(key, "shortcut") && !strcmp(value, "pad"));
        CHECK_EQ_INT(ib_model_layer_option(m, i, 2, &key, value, sizeof value), IB_ERR_ARG);
        CHECK(info.in_ndim == 3 && info.in[0] == 16 && info.in[1] == 32 && info.in[2] == 32);
        CHECK(info.out_ndim == 3 && info.out[0] == 32 && info.out[1] == 16 && info.out[2] == 16);
        /* conv1, bn1 (4), conv2, bn2 (4): the pad shortcut has none */
        CHECK_EQ_INT(info.n_tensors, 10);
        CHECK_EQ_INT(info.params, 16 * 32 * 9 + 2 * 32 + 32 * 32 * 9 + 2 * 32);
        ib_model_tensor t;
        CHECK_OK(ib_model_layer_tensor(m, i, 4, &t));
        CHECK(!strcmp(t.name, "layer2.0.bn1.running_var") && !t.trainable && t.ndim == 1 && t.shape[0] == 32);
        CHECK_EQ_INT(ib_model_layer_tensor(m, i, 10, &t), IB_ERR_ARG);
        CHECK_EQ_INT(ib_model_layer_tensor(m, i, -1, &t), IB_ERR_ARG);
        CHECK(!info.bottleneck);
    }
    CHECK_EQ_INT(found, 2);
    CHECK_EQ_INT(ib_model_layer(m, n, &info), IB_ERR_ARG);
    CHECK_EQ_INT(ib_model_layer(m, -1, &info), IB_ERR_ARG);
    CHECK_EQ_INT(ib_model_layer(m, 0, NULL), IB_ERR_ARG);
    CHECK_EQ_INT(ib_model_layer(NULL, 0, &info), IB_ERR_ARG);
    CHECK_EQ_INT(ib_model_layer_count(NULL), 0);
    ib_model_free(m);

    /* An unset beta is not an option of the text; a set one is. */
    CHECK_OK(ib_model_parse("model t\ninput 1 2 2\nclasses 2\nflatten\nlinear 8\nvib 4\nlinear 4\nvib 2 beta=0.001 "
                            "name=z\n",
                            "t", &m));
    const char *want[] = {"vib", "shift", "-5", "vib", "shift", "-5"};
    for (int i = 2, k = 0; i < 5; i += 2, k += 3) {
        CHECK_OK(ib_model_layer(m, i, &info));
        CHECK(!strcmp(info.kind, want[k]) && info.bottleneck);
        CHECK_EQ_INT(info.n_options, i == 2 ? 1 : 2);
        const char *key = NULL;
        char value[16];
        CHECK_OK(ib_model_layer_option(m, i, 0, &key, value, sizeof value));
        CHECK(!strcmp(key, want[k + 1]) && !strcmp(value, want[k + 2]));
    }
    CHECK_OK(ib_model_layer(m, 4, &info));
    CHECK(!strcmp(info.name, "z"));
    const char *key = NULL;
    char value[16];
    CHECK_OK(ib_model_layer_option(m, 4, 1, &key, value, sizeof value));
    CHECK(!strcmp(key, "beta") && !strcmp(value, "0.001"));
    ib_model_free(m);
}

/* The item named `name` of m, or -1. */
static int item_named(const ib_model *m, const char *name)
{
    ib_model_layer_info info;
    for (int i = 0; i < ib_model_layer_count(m); i++)
        if (ib_model_layer(m, i, &info) == IB_OK && !strcmp(info.name, name))
            return i;
    return -1;
}

static double option_value(const ib_model *m, const char *item, const char *key)
{
    double v = NAN;
    CHECK_OK(ib_model_layer_option_value(m, item_named(m, item), key, &v));
    return v;
}

/* ib_model_layer_option_value: numbers, bools and choices by key (also
 * options the text leaves out), agreeing with the text of every written
 * option of every built-in; errors for unknown keys, groups, widths. */
static void test_layer_option_values(void)
{
    ib_model *m = NULL;
    CHECK_OK(ib_model_load("resnet20", &m));
    CHECK(option_value(m, "layer2.0", "stride") == 2 && option_value(m, "layer2.0", "shortcut") == 1);
    CHECK(option_value(m, "conv1", "k") == 3 && option_value(m, "conv1", "bias") == 0);
    double v;
    CHECK_EQ_INT(ib_model_layer_option_value(m, item_named(m, "layer2.0"), "k", &v), IB_ERR_ARG);
    CHECK_EQ_INT(ib_model_layer_option_value(m, item_named(m, "layer2"), "stride", &v), IB_ERR_ARG);
    CHECK_EQ_INT(ib_model_layer_option_value(m, 0, NULL, &v), IB_ERR_ARG);
    CHECK_EQ_INT(ib_model_layer_option_value(m, 0, "k", NULL), IB_ERR_ARG);
    CHECK_EQ_INT(ib_model_layer_option_value(m, -1, "k", &v), IB_ERR_ARG);
    CHECK_EQ_INT(ib_model_layer_option_value(NULL, 0, "k", &v), IB_ERR_ARG);
    ib_model_free(m);
    CHECK_OK(ib_model_load("imb-mlp", &m));
    CHECK(option_value(m, "b1", "particles") == 32 && option_value(m, "b1", "grad") == 0 &&
          option_value(m, "b2", "prior") == 0 && option_value(m, "b2", "temp") == 0);
    ib_model_free(m);
    CHECK_OK(ib_model_load("vib-mlp", &m));
    CHECK(option_value(m, "vib", "shift") == -5 && option_value(m, "vib", "beta") == -1 &&
          option_value(m, "vib", "particles") == 1);
    ib_model_free(m);
    CHECK_OK(ib_model_load("resnet20-vsd", &m));
    CHECK(option_value(m, "head", "zdim") == 64 && option_value(m, "head", "p") == 0.5f);
    CHECK_EQ_INT(ib_model_layer_option_value(m, item_named(m, "head"), "hidden", &v), IB_ERR_ARG);
    ib_model_free(m);
    for (int b = 0; b < ib_model_builtin_count(); b++) {
        CHECK_OK(ib_model_load(ib_model_builtin_name(b), &m));
        for (int i = 0; i < ib_model_layer_count(m); i++) {
            ib_model_layer_info info;
            CHECK_OK(ib_model_layer(m, i, &info));
            for (int j = 0; j < info.n_options; j++) {
                const char *key;
                char text[64], *end;
                CHECK_OK(ib_model_layer_option(m, i, j, &key, text, sizeof text));
                double want = strtod(text, &end);
                if (*end) /* a word: a bool, or a choice (checked above), or a list of widths */
                    want = !strcmp(text, "true") ? 1 : !strcmp(text, "false") ? 0 : NAN;
                if (isnan(want) || !strcmp(key, "hidden")) /* hidden=128 is a list of one width */
                    continue;
                v = NAN;
                CHECK_OK(ib_model_layer_option_value(m, i, key, &v));
                CHECK_MSG(v == want || fabs(v - want) <= 1e-6 * fabs(want), "%s %s %s=%s: %g",
                          ib_model_builtin_name(b), info.name, key, text, v);
            }
        }
        ib_model_free(m);
    }
}

int main(void)
{
    IB_RUN(test_builtin_list);
    IB_RUN(test_layer_option_values);
    IB_RUN(test_builtin_files_match);
    IB_RUN(test_malformed);
    IB_RUN(test_limits);
    IB_RUN(test_load_errors);
    IB_RUN(test_round_trip);
    IB_RUN(test_builtins_build);
    IB_RUN(test_build_shares_params);
    IB_RUN(test_init_styles);
    IB_RUN(test_build_errors);
    IB_RUN(test_torch_names);
    IB_RUN(test_torch_blocks);
    IB_RUN(test_add_cells);
    IB_RUN(test_layer_listing_builtins);
    IB_RUN(test_layer_listing_values);
    return ib_test_summary();
}
