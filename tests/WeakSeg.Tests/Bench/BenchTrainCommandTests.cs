using System.Text.Json;
using WeakSeg.Cli;
using WeakSeg.Cli.Commands;
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
        var settings = new BenchTrainSettings("cpu", BenchTrainSettings.CpuModel, BatchSize: 2, Steps: 30, ProbeStep: 30, WarmupSteps: 5, Threads: 0);
        var e = Assert.Throws<WeakSegException>(settings.EnsureValid);
        Assert.Contains("--probe-step", e.Message);
        Assert.Contains("[1, 30)", e.Message);
    }

    [Fact]
    public void ImageSizeNotAMultipleOfThePatch_IsRejectedBeforeTorchRuns()
    {
        var model = BenchTrainSettings.CpuModel;
        var settings = new BenchTrainSettings("cpu", model with { Backbone = model.Backbone with { ImageSize = 36 } }, 2, 30, 10, 5, 0);
        var e = Assert.Throws<WeakSegException>(settings.EnsureValid);
        Assert.Contains("ImageSize must be a multiple of PatchSize (got 36, 8)", e.Message);
    }

    [Fact]
    public void Presets_HaveThePaperAndCpuShapes()
    {
        var cpu = BenchTrainSettings.Preset("cpu");
        Assert.Equal((96, 8, 192, 6, 4, 10), (cpu.Backbone.ImageSize, cpu.Backbone.PatchSize, cpu.Backbone.EmbedDim, cpu.Backbone.Depth, cpu.Backbone.NumHeads, cpu.NumClasses));
        var deit = BenchTrainSettings.Preset("deit-s");
        Assert.Equal((224, 16, 384, 12, 6, 20), (deit.Backbone.ImageSize, deit.Backbone.PatchSize, deit.Backbone.EmbedDim, deit.Backbone.Depth, deit.Backbone.NumHeads, deit.NumClasses));
        Assert.Contains("unknown model", Assert.Throws<WeakSegException>(() => BenchTrainSettings.Preset("vit-h")).Message);
    }
}
