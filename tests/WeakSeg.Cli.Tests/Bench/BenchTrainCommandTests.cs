using System.Text.Json;
using WeakSeg.Cli;
using WeakSeg.Cli.Commands;
using WeakSeg.Methods;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Bench;

[Collection("Torch")]
public sealed class BenchTrainCommandTests
{
    static double Get(JsonElement root, string name) => root.GetProperty(name).GetDouble();

    [Fact]
    public void TinyRun_WritesConsistentFigures()
    {
        using var dir = TestPaths.NewTempDir();
        var json = dir.File("bench.json");
        int exit = Program.Run(["bench", "train", "--json", json, "--steps-long", "30", "--probe-step", "10", "--warmup-steps", "5",
            "--image-size", "32", "--batch-size", "2", "--gemm-size", "256", "--threads", "1"]);
        Assert.Equal(0, exit);
        Assert.Equal(2, TorchSharp.torch.get_num_threads());   // the Torch fixture's setting is restored after the run
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var r = doc.RootElement;
        foreach (var key in new[] { "images_per_s", "gemm_ratio", "peak_rss_mb", "rss_growth", "rss_mb_step200", "rss_mb_step2000",
                                    "gemm_gflops", "achieved_gflops", "threads", "flops_per_image", "cpu_utilisation" })
            Assert.True(r.TryGetProperty(key, out _), $"missing key {key}");

        Assert.Equal("cpu", r.GetProperty("model").GetString());
        Assert.Equal("mctformer-v2", r.GetProperty("method").GetString());
        Assert.Equal("V2", r.GetProperty("variant").GetString());
        Assert.Equal(TrainBenchmarkSettings.ExactFlopsLabel, r.GetProperty("flops_label").GetString());
        Assert.True(r.GetProperty("flops_exact").GetBoolean());
        Assert.Equal(30, Get(r, "steps"));
        Assert.Equal(2, Get(r, "batch_size"));
        Assert.Equal(1, Get(r, "threads"));
        Assert.Equal(new[] { 10, 30 }, r.GetProperty("rss_probe_steps").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        // cpu model at 32²: N = 16 patches, T = 26 tokens, D = 192, MLP 768, depth 6, K = 10 →
        // patch 1 179 648 + 6 × 23 522 304 (qkv 5 750 784, q·kᵀ and attn·v 519 168, proj 1 916 928, mlp 15 335 424) + head 552 960
        // = 142 866 432 per forward; training = 3 × forward
        Assert.Equal(428_599_296, Get(r, "flops_per_image"));

        double ips = Get(r, "images_per_s");
        Assert.True(ips > 0);
        Assert.Equal(25 * 2 / Get(r, "timed_seconds"), ips, 1e-9);                                 // 25 timed steps × 2 images
        Assert.Equal(ips * 428_599_296 / 1e9, Get(r, "achieved_gflops"), 1e-9);
        Assert.Equal(Math.Max(Get(r, "gemm_gflops_before"), Get(r, "gemm_gflops_after")), Get(r, "gemm_gflops"));
        Assert.Equal(Get(r, "achieved_gflops") / Get(r, "gemm_gflops"), Get(r, "gemm_ratio"), 1e-12);
        double first = Get(r, "rss_mb_step200"), last = Get(r, "rss_mb_step2000");
        Assert.Equal((last - first) / first, Get(r, "rss_growth"), 1e-9);
        Assert.True(Get(r, "peak_rss_mb") >= Math.Max(first, last) - 1e-9);
        Assert.InRange(first, 10, 1e6);
        // Process CPU time over wall time: one libtorch thread, plus the runtime's JIT and GC threads, which in a 3-second run
        // on an idle machine can add more than half a core; never more than the machine's cores.
        Assert.InRange(Get(r, "cpu_utilisation"), 0.01, Environment.ProcessorCount + 0.01);
        Assert.True(Get(r, "loss_last") < Get(r, "loss_first"), "30 AdamW steps on one fixed batch should lower its loss");
    }

    [Fact]
    public void ProbeStepNotBeforeTheLastStep_IsRejectedWithTheOptionName()
    {
        var settings = new TrainBenchmarkSettings("cpu", TrainBenchmarkSettings.DefaultMethod, TrainBenchmarkSettings.Preset("cpu").ModelConfig, BatchSize: 2, Steps: 30, ProbeStep: 30, WarmupSteps: 5, Threads: 0);
        var e = Assert.Throws<WeakSegException>(settings.EnsureValid);
        Assert.Contains("--probe-step", e.Message);
        Assert.Contains("[1, 30)", e.Message);
    }

    [Fact]
    public void ImageSizeNotAMultipleOfThePatch_IsRejectedBeforeTorchRuns()
    {
        var model = TrainBenchmarkSettings.Preset("cpu").WithImageSize(36).ModelConfig;
        var settings = new TrainBenchmarkSettings("cpu", TrainBenchmarkSettings.DefaultMethod, model, 2, 30, 10, 5, 0);
        var e = Assert.Throws<WeakSegException>(settings.EnsureValid);
        Assert.Contains("ImageSize must be a multiple of PatchSize (got 36, 8)", e.Message);
    }

    [Fact]
    public void Presets_HaveThePaperAndCpuShapes()
    {
        var cpu = TrainBenchmarkSettings.Preset("cpu").ModelConfig;
        var b = cpu.BackboneConfig!;
        Assert.Equal((96, 8, 192, 6, 4, 10), (b.ImageSize, b.PatchSize, b.EmbedDim, b.Depth, b.NumHeads, cpu.NumClasses));
        var deit = TrainBenchmarkSettings.Preset("deit-s").ModelConfig;
        b = deit.BackboneConfig!;
        Assert.Equal((224, 16, 384, 12, 6, 20), (b.ImageSize, b.PatchSize, b.EmbedDim, b.Depth, b.NumHeads, deit.NumClasses));
        Assert.Contains("unknown model", Assert.Throws<WeakSegException>(() => TrainBenchmarkSettings.Preset("vit-h")).Message);
        // The default method's configurations are the MCTformer-V2 records the benchmark has always trained.
        Assert.Equal(new MctFormerConfig { Variant = MctFormerVariant.V2, NumClasses = 10, Backbone = new VitConfig { ImageSize = 96, PatchSize = 8, EmbedDim = 192, Depth = 6, NumHeads = 4 } }, cpu);
        Assert.Equal(new MctFormerConfig { Variant = MctFormerVariant.V2, NumClasses = 20, Backbone = VitConfig.Small with { ImageSize = 224 } }, deit);
    }

    [Fact]
    public void Presets_OfAnotherMethod_KeepItsOwnFieldsAndTakeTheBenchBackboneShape()
    {
        var config = TrainBenchmarkSettings.Preset("cpu", BuiltInMethods.WeakTr).ModelConfig;
        var paper = MethodRegistry.Get(BuiltInMethods.WeakTr).DefaultConfig(MethodPreset.Paper).WithNumClasses(10);
        var b = config.BackboneConfig!;
        Assert.Equal((96, 8, 192, 6, 4, 10), (b.ImageSize, b.PatchSize, b.EmbedDim, b.Depth, b.NumHeads, config.NumClasses));
        Assert.Equal(paper.BackboneConfig! with { ImageSize = 96, PatchSize = 8, EmbedDim = 192, Depth = 6, NumHeads = 4 }, b);
        var factory = MethodRegistry.Get(BuiltInMethods.WeakTr);
        var fields = factory.ConfigToJson(config).AsObject();
        var paperFields = factory.ConfigToJson(paper).AsObject();
        Assert.Equal(paperFields.Select(f => f.Key), fields.Select(f => f.Key));
        foreach (var (key, value) in paperFields.Where(f => f.Key != "backbone"))
            Assert.True(System.Text.Json.Nodes.JsonNode.DeepEquals(value, fields[key]), $"{key} differs from the paper configuration");
    }

    static (int Code, string Errors) RunCli(params string[] args)
    {
        var previous = Console.Error;
        var capture = new StringWriter();
        Console.SetError(capture);
        try { return (Program.Run(args), capture.ToString()); }
        finally { Console.SetError(previous); }
    }

    /// <summary>A tiny bench run of <paramref name="extra"/>'s method; returns the JSON report's root.</summary>
    static JsonElement TinyRun(params string[] extra)
    {
        using var dir = TestPaths.NewTempDir();
        var json = dir.File("bench.json");
        int exit = Program.Run(["bench", "train", "--json", json, "--steps-long", "12", "--probe-step", "4", "--warmup-steps", "2",
            "--image-size", "32", "--batch-size", "2", "--gemm-size", "128", "--threads", "1", .. extra]);
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        return doc.RootElement.Clone();
    }

    [Fact]
    public void The_hybrid_stem_is_counted_as_it_runs()
    {
        // The cpu model at 32² (428 599 296 with the patch stem, see above) with the frozen ResNet-18 stem to stride 8: the patch conv
        // (3 × 1 179 648) goes; the 1×1 projection 128 → 192 on the 16 tokens (3 × 786 432) and one forward of the CNN come in:
        // stem 16² · 49·3·64 · 2 = 4 816 896, layer1 4 × 8² · 9·64·64 · 2 = 18 874 368, layer2 at 4²: 2 359 296 + 3 × 4 718 592 +
        // 262 144 downsample = 16 777 216 → 40 468 480.
        var r = TinyRun("--set", "model.backbone.stem=resnet18-s8");
        Assert.Equal("resnet18-s8", r.GetProperty("stem").GetString());
        Assert.Equal(428_599_296 - 3 * 1_179_648 + 3 * 786_432 + 40_468_480, Get(r, "flops_per_image"));
        Assert.True(Get(r, "images_per_s") > 0);
        // Fine-tuned: the CNN's backward counts too (3 × its forward).
        var tuned = TinyRun("--backbone", "resnet18-s8", "--set", "model.backbone.freeze_stem=false");
        Assert.Equal(428_599_296 - 3 * 1_179_648 + 3 * 786_432 + 3 * 40_468_480, Get(tuned, "flops_per_image"));
    }

    [Fact]
    public void A_cnn_method_takes_the_input_side_and_counts_its_own_flops()
    {
        var r = TinyRun("--method", "cam-resnet18");
        Assert.Equal(32, Get(r, "image_size"));
        Assert.Equal(8, Get(r, "patch_size"));
        Assert.False(r.TryGetProperty("embed_dim", out _));
        Assert.True(r.GetProperty("flops_exact").GetBoolean());
        var config = WeakSeg.Methods.CamResNet.CamResNetConfig.Paper with { ImageSize = 32, NumClasses = 10 };
        Assert.Equal(config.TrainFlopsPerImage(), Get(r, "flops_per_image"));
    }

    // WeakTr on the cpu backbone at 32²: N = 16 patches, T = 16 + 10 class tokens = 26, D = 192, depth 6 → the backbone forward is
    // the MCTformer count above without its 552 960-FLOP head: 142 313 472; training = 3 × forward. Heads not counted: a lower bound.
    const double WeakTrBackboneFlops = 426_940_416;

    [Fact]
    public void WeakTr_TrainsWithItsOwnLoss_AndReportsBackboneFlopsAsALowerBound()
    {
        var r = TinyRun("--method", "weaktr");
        Assert.Equal("weaktr", r.GetProperty("method").GetString());
        Assert.Equal(TrainBenchmarkSettings.BackboneFlopsLabel, r.GetProperty("flops_label").GetString());
        Assert.Equal("backbone FLOPs (lower bound)", r.GetProperty("flops_label").GetString());
        Assert.False(r.GetProperty("flops_exact").GetBoolean());
        Assert.False(r.TryGetProperty("variant", out _));
        Assert.Equal(WeakTrBackboneFlops, Get(r, "flops_per_image"));
        Assert.Equal("Aaf", r.GetProperty("model_config").GetProperty("fusion").GetString(), ignoreCase: true);
        double ips = Get(r, "images_per_s");
        Assert.True(ips > 0);
        Assert.Equal(10 * 2 / Get(r, "timed_seconds"), ips, 1e-9);                                 // 10 timed steps × 2 images
        Assert.Equal(ips * WeakTrBackboneFlops / 1e9, Get(r, "achieved_gflops"), 1e-9);
        Assert.True(float.IsFinite((float)Get(r, "loss_first")) && float.IsFinite((float)Get(r, "loss_last")));
    }

    [Fact]
    public void Set_ChangesTheMethodsConfiguration_PooledAttentionMapsRuns()
    {
        var r = TinyRun("--method", "weaktr", "--set", "model.fusion=pooled-attention-maps");
        Assert.Equal("weaktr", r.GetProperty("method").GetString());
        Assert.Equal("backbone FLOPs (lower bound)", r.GetProperty("flops_label").GetString());
        Assert.Equal(WeakTrBackboneFlops, Get(r, "flops_per_image"));
        Assert.Equal("PooledAttentionMaps", r.GetProperty("model_config").GetProperty("fusion").GetString()!.Replace("-", "").Replace("_", ""), ignoreCase: true);
        Assert.True(Get(r, "images_per_s") > 0);
    }

    [Fact]
    public void SetOfATrainerField_IsRefusedNotIgnored()
    {
        var (code, errors) = RunCli("bench", "train", "--set", "trainer.steps=5", "--steps-long", "4");
        Assert.NotEqual(0, code);
        var line = Assert.Single(errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--set trainer.", line);
        Assert.Contains("only model.FIELD", line);
        var unknown = RunCli("bench", "train", "--method", "weaktr", "--set", "model.no_such_field=1", "--steps-long", "4");
        Assert.NotEqual(0, unknown.Code);
        Assert.Contains("no_such_field", Assert.Single(unknown.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
    }

    [Fact]
    public void UnknownMethod_IsOneClearLine()
    {
        var (code, errors) = RunCli("bench", "train", "--method", "no-such-method", "--steps-long", "4");
        Assert.NotEqual(0, code);
        var lines = errors.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("unknown method 'no-such-method'", lines[0]);
        Assert.Contains("weaktr", lines[0]);
    }
}
