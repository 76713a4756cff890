using System.Text.Json.Nodes;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using Xunit;

namespace WeakSeg.Tests.Scale;

/// <summary>
/// Data-parallel training over Open MPI, run through the built CLI: <c>mpirun -np 2 weakseg train</c> with batch B = 4 (2 images per
/// rank) against one process with batch 4. The tiny MCTformer-V2 has no stochastic layers (drop path 0, no dropout) and the
/// augmentation of each image depends on (seed, epoch, image) only, so both runs see the same images and the same crops; they
/// differ only in how the gradient sums are rounded (one mean over 4 images vs. the mean of two means of 2).
/// </summary>
[Collection("Torch")]
public class DataParallelTrainingTests(Xunit.Abstractions.ITestOutputHelper output)
{
    /// <summary>Largest allowed |w₂ − w₁| after 4 AdamW steps at lr 1e-3 (weights are O(0.1–1)); measured 5.6e-8 on this machine.
    /// A wrong reduction (sum instead of mean, one rank's gradient only, unsynchronised weights) moves weights by ≥ 1e-4.</summary>
    const float Tolerance = 2e-5f;

    static Dictionary<string, float[]> Weights(string runDir, string? weights = null) => TrainedRuns.Weights(runDir, weights);

    static float MaxDifference(Dictionary<string, float[]> a, Dictionary<string, float[]> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        float max = 0;
        foreach (var (key, values) in a)
            for (int i = 0; i < values.Length; i++) max = Math.Max(max, Math.Abs(values[i] - b[key][i]));
        return max;
    }

    static double[] Losses(string runDir) => File.ReadAllLines(Path.Combine(runDir, "metrics.jsonl"))
        .Select(l => JsonNode.Parse(l)!["loss"]!.GetValue<double>()).ToArray();

    [MpiFact]
    public void Two_ranks_with_batch_2_each_train_the_weights_of_one_process_with_batch_4_and_resume_only_with_two()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));                     // 8 train images: 2 global batches per epoch
        var config = dir.File("tiny.json");
        File.WriteAllText(config, PipelineTestData.TinyOverlay(steps: 4).ToJsonString());   // batch 4, checkpoints at steps 2 and 4
        string[] Train(string run) => ["train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config, "--threads", "1", "--workers", "1"];

        var one = MpiTestRunner.Single(Train(dir.File("one")));
        Assert.True(one.Code == 0, one.Stdout + one.Stderr);
        var two = MpiTestRunner.Ranks(2, Train(dir.File("two")));
        Assert.True(two.Code == 0, two.Stdout + two.Stderr);
        Assert.Contains("data-parallel over 2 MPI ranks: global batch 4 = 2 images per rank × 2", two.Stdout);
        Assert.Single(two.Stdout.Split('\n'), l => l.StartsWith("trained 4 steps", StringComparison.Ordinal));   // rank 0 speaks alone

        var w1 = Weights(dir.File("one"));
        var w2 = Weights(dir.File("two"));
        float diff = MaxDifference(w1, w2);
        output.WriteLine($"max |w(2 ranks × 2) − w(1 × 4)| after 4 steps = {diff}");
        Assert.True(diff <= Tolerance, $"2 ranks × batch 2 vs 1 process × batch 4: max |Δw| = {diff} > {Tolerance}");
        using (var fresh = PipelineTestData.TinyRecipe().Factory.Create(PipelineTestData.TinyRecipe().ModelConfig))
        {
            var init = fresh.Model.state_dict()["head.weight"].data<float>().ToArray();
            Assert.True(init.Zip(w1["head.weight"]).Max(p => Math.Abs(p.First - p.Second)) > 100 * Tolerance, "training moved the weights well beyond the tolerance");
        }
        // The logged loss is the global batch's mean on both.
        var l1 = Losses(dir.File("one"));
        var l2 = Losses(dir.File("two"));
        Assert.Equal(4, l2.Length);
        for (int i = 0; i < 4; i++) Assert.True(Math.Abs(l1[i] - l2[i]) <= 1e-5 * Math.Abs(l1[i]), $"step {i + 1}: loss {l2[i]} (2 ranks) vs {l1[i]}");

        // The checkpoint records the rank count; a resume with another count is refused with the command to use.
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(dir.File("two"), "checkpoints", "step-000000004", "state.json")))!;
        Assert.Equal(2, state["world_size"]!.GetValue<int>());
        var refused = MpiTestRunner.Single([.. Train(dir.File("two")), "--resume"]);
        Assert.Equal(1, refused.Code);
        Assert.Contains("trained by 2 processes (MPI ranks) but this resume has 1; resume with the same number (mpirun -np 2)", refused.Stderr);

        // Interrupted after step 2 (the step-4 checkpoint and final weights gone), resumed on 2 ranks: bitwise the uninterrupted run.
        CopyDirectory(dir.File("two"), dir.File("resumed"));
        Directory.Delete(Path.Combine(dir.File("resumed"), "checkpoints", "step-000000004"), recursive: true);
        File.Delete(Path.Combine(dir.File("resumed"), "model-final.bin"));
        var resumed = MpiTestRunner.Ranks(2, [.. Train(dir.File("resumed")), "--resume"]);
        Assert.True(resumed.Code == 0, resumed.Stdout + resumed.Stderr);
        var w3 = Weights(dir.File("resumed"));
        foreach (var (key, values) in w2) Assert.True(values.SequenceEqual(w3[key]), $"weights '{key}' differ after a 2-rank resume");
    }

    /// <summary>
    /// 2 ranks train 30 steps while a thread in each forces garbage collections and finalizers without pause
    /// (<see cref="WeakSeg.Training.CollectorStress"/>): a Scalar that TorchSharp passes to libtorch without keeping it reachable is then
    /// freed mid-call within the first steps. Before the trainer, optimizers and all-reduce held their Scalars, this failed every
    /// time ("Unknown scalar type" in linalg.vector_norm, or "Expected false to be true" in Scalar.h); the collections must not change
    /// the result either (bitwise the run without them).
    /// </summary>
    [MpiFact]
    public void Two_ranks_train_30_steps_bitwise_as_without_stress_while_a_thread_collects_garbage_without_pause()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var overlay = PipelineTestData.TinyOverlay(steps: 30);
        overlay["trainer"]!["checkpoint_every"] = 15;
        var config = dir.File("tiny.json");
        File.WriteAllText(config, overlay.ToJsonString());
        string[] Train(string run) => ["train", "--method", "mctformer-v2", "--data", data, "--out", run, "--config", config, "--threads", "1", "--workers", "1"];

        var stressed = MpiTestRunner.RanksWithEnvironment(2, [(WeakSeg.Training.CollectorStress.EnvironmentVariable, "1")], Train(dir.File("stressed")));
        Assert.True(stressed.Code == 0, stressed.Stdout + stressed.Stderr);
        Assert.Contains("trained 30 steps", stressed.Stdout);
        var plain = MpiTestRunner.Ranks(2, Train(dir.File("plain")));
        Assert.True(plain.Code == 0, plain.Stdout + plain.Stderr);
        var a = Weights(dir.File("stressed"));
        var b = Weights(dir.File("plain"));
        foreach (var (key, values) in b) Assert.True(values.SequenceEqual(a[key]), $"weights '{key}' differ with the collector thread");
    }

    /// <summary>
    /// The pipeline on 2 ranks: it completes with one ledger and report (rank 0's), and its per-image stages under mpirun write exactly
    /// what one process writes from the same weights (cam maps byte for byte; eval's all-reduced confusion matrix gives the same JSON).
    /// </summary>
    [MpiFact]
    public void Pipeline_runs_on_two_ranks_and_ranked_per_image_stages_equal_one_process()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var (camConfig, segConfig) = ShardedStagesTests.WriteTinyPipelineConfigs(dir);
        var pipe = dir.File("pipe");
        var run = MpiTestRunner.Ranks(2, "pipeline", "--method", "mctformer-v2", "--data", data, "--out", pipe, "--config", camConfig,
            "--seg-config", segConfig, "--scales", "1", "--threads", "1", "--workers", "1", "--decoders", "gradclip", "--no-upper-bound");
        Assert.True(run.Code == 0, run.Stdout + run.Stderr);
        var report = JsonNode.Parse(File.ReadAllText(Path.Combine(pipe, "report.json")))!;
        Assert.True(report["pseudo_miou"]!.GetValue<double>() > 0);
        Assert.All(Directory.GetFiles(Path.Combine(pipe, "stages")), f => Assert.Equal("done", JsonNode.Parse(File.ReadAllText(f))!["status"]!.GetValue<string>()));
        Assert.Contains("data-parallel over 2 MPI ranks", run.Stdout);

        var camRun = Path.Combine(pipe, "cam", "run");
        string[] cam = ["cam", "--run", camRun, "--split", "train", "--scales", "1", "--threads", "1"];
        Assert.Equal(0, MpiTestRunner.Single([.. cam, "--out", dir.File("maps-1")]).Code);
        var ranked = MpiTestRunner.Ranks(2, [.. cam, "--out", dir.File("maps-2")]);
        Assert.True(ranked.Code == 0, ranked.Stdout + ranked.Stderr);
        Assert.Contains("wrote maps of 8 images", ranked.Stdout);                    // the job's count, reported once by rank 0
        foreach (var f in Directory.GetFiles(dir.File("maps-1")).Where(f => Path.GetFileName(f) != WeakSeg.IO.FolderLock.FileName))
            Assert.True(File.ReadAllBytes(f).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(dir.File("maps-2"), Path.GetFileName(f)))), Path.GetFileName(f));
        Assert.Equal(Directory.GetFiles(dir.File("maps-1")).Length, Directory.GetFiles(dir.File("maps-2")).Length);

        var pseudo = Directory.GetDirectories(pipe, "pseudo-*").Single();
        string[] eval = ["eval", "--pred", pseudo, "--data", data, "--split", "train"];
        Assert.Equal(0, MpiTestRunner.Single([.. eval, "--json", dir.File("eval-1.json")]).Code);
        var rankedEval = MpiTestRunner.Ranks(2, [.. eval, "--json", dir.File("eval-2.json")]);
        Assert.True(rankedEval.Code == 0, rankedEval.Stdout + rankedEval.Stderr);
        Assert.Equal(File.ReadAllText(dir.File("eval-1.json")), File.ReadAllText(dir.File("eval-2.json")));
        var both = MpiTestRunner.Ranks(2, [.. eval, "--shard", "1/2"]);
        Assert.NotEqual(0, both.Code);
        Assert.Contains("which already split the images; use one or the other", both.Stderr);
    }

    static void CopyDirectory(string from, string to)
    {
        foreach (var d in Directory.GetDirectories(from, "*", SearchOption.AllDirectories)) Directory.CreateDirectory(d.Replace(from, to));
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            if (Path.GetFileName(f) != WeakSeg.IO.FolderLock.FileName) File.Copy(f, f.Replace(from, to));
    }
}
