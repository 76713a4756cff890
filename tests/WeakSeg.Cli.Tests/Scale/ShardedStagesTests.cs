using System.Text.Json.Nodes;
using WeakSeg.IO;
using WeakSeg.Refinement.Affinity;
using WeakSeg.Runtime;
using WeakSeg.Tests.Evaluation;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Refinement.Affinity;
using WeakSeg.Tests.Support;
using Xunit;

namespace WeakSeg.Tests.Scale;

/// <summary>
/// The per-image stages split by <c>--shard i/N</c> (job arrays without MPI): two shard jobs writing into one folder leave exactly
/// the files, byte for byte, of one unsharded process; eval's two partial confusion matrices merge into the unsharded metrics.
/// </summary>
[Collection("Torch")]
public class ShardedStagesTests
{
    static (int Code, string Out, string Err) Cli(params string[] args) => EvalTestData.RunCli(args);

    /// <summary>--config and --seg-config files of a tiny pipeline (MCTformer-V2 16-wide ViT, 3 steps; 1-block segmenter, 2 steps).</summary>
    internal static (string CamConfig, string SegConfig) WriteTinyPipelineConfigs(TempDir dir)
    {
        var camConfig = dir.File("cam.json");
        File.WriteAllText(camConfig, """
            {"model": {"backbone": {"image_size": 32, "patch_size": 8, "embed_dim": 16, "depth": 2, "num_heads": 2}, "cam_layers": 2},
             "trainer": {"steps": 3, "batch_size": 4, "warmup_steps": 1}}
            """);
        var segConfig = dir.File("seg.json");
        File.WriteAllText(segConfig, (WeakSeg.Segmentation.SegmentationConfig.Cpu with
        {
            Backbone = new WeakSeg.Models.Vit.VitConfig { PatchSize = 8, EmbedDim = 16, Depth = 1, NumHeads = 2 },
            CropSize = 32, ClipPatchSize = 8, Steps = 2, BatchSize = 4, WarmupSteps = 1,
        }).ToJson());
        return (camConfig, segConfig);
    }

    static void Ok((int Code, string Out, string Err) r, string what) => Assert.True(r.Code == 0, $"{what}: {r.Out}{r.Err}");

    /// <summary>Runs ARGS + --out WHOLE once, and ARGS + --out SHARDED --shard 1/2 and 2/2; the folders must hold the same files, equal
    /// byte for byte, and each shard must have written some of them.</summary>
    static void AssertShardsEqualOneProcess(string stage, string whole, string sharded, string[] args, Func<string, int> written)
    {
        Ok(Cli([.. args, "--out", whole]), stage);
        var first = Cli([.. args, "--out", sharded, "--shard", "1/2"]);
        Ok(first, stage + " 1/2");
        var second = Cli([.. args, "--out", sharded, "--shard", "2/2"]);
        Ok(second, stage + " 2/2");
        Assert.Contains("(shard 1/2)", first.Out);
        Assert.True(written(first.Out) > 0 && written(second.Out) > 0, $"{stage}: both shards have images ({first.Out} / {second.Out})");
        static Dictionary<string, byte[]> Files(string dir) => Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != FolderLock.FileName)
            .ToDictionary(f => Path.GetRelativePath(dir, f), File.ReadAllBytes);
        var a = Files(whole);
        var b = Files(sharded);
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        Assert.True(a.Count > 2, $"{stage}: wrote {a.Count} files");
        foreach (var (name, bytes) in a) Assert.True(bytes.AsSpan().SequenceEqual(b[name]), $"{stage}: {name} differs between one process and two shards");
    }

    static int Number(string text, string before)
    {
        int i = text.IndexOf(before, StringComparison.Ordinal) + before.Length;
        return int.Parse(new string(text[i..].TakeWhile(char.IsDigit).ToArray()), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Two_shard_jobs_write_the_files_of_one_process_in_every_per_image_stage_and_eval_partials_merge_exactly()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var (camConfig, segConfig) = ShardedStagesTests.WriteTinyPipelineConfigs(dir);
        var pipe = dir.File("pipe");
        Ok(Cli("pipeline", "--method", "mctformer-v2", "--data", data, "--out", pipe, "--config", camConfig, "--seg-config", segConfig,
            "--scales", "1", "--threads", "2", "--decoders", "gradclip", "--no-upper-bound"), "pipeline");
        var camRun = Path.Combine(pipe, "cam", "run");
        var segRun = Directory.GetDirectories(Path.Combine(pipe, "seg")).Single();

        AssertShardsEqualOneProcess("cam", dir.File("cam-1"), dir.File("cam-2"),
            ["cam", "--run", camRun, "--split", "train", "--scales", "1,0.5", "--threads", "2"], o => Number(o, "wrote maps of "));
        var cams = dir.File("cam-1");
        AssertShardsEqualOneProcess("pseudo", dir.File("pl-1"), dir.File("pl-2"),
            ["pseudo", "--cams", cams, "--threshold", "0.3", "--uncertain", "0.2:0.5"], o => Number(o, "wrote "));
        var labels = dir.File("pl-1");
        AssertShardsEqualOneProcess("crf", dir.File("crf-1"), dir.File("crf-2"),
            ["crf", "--pred", labels, "--data", data, "--split", "train", "--preset", "psa"], o => Number(o, "wrote "));
        AssertShardsEqualOneProcess("seg-infer", dir.File("si-1"), dir.File("si-2"),
            ["seg-infer", "--run", segRun, "--split", "train", "--threads", "2"], o => Number(o, "wrote "));

        var affConfig = dir.File("aff.json");
        File.WriteAllText(affConfig, AffinityRun.ToJson(new AffinityRunConfig { Net = AffinityTestData.TinyNet(), Radius = 3 }));
        var affRun = dir.File("aff");
        Ok(Cli("affinity", "train", "--cams", cams, "--data", data, "--out", affRun, "--config", affConfig, "--steps", "2", "--batch-size", "2",
            "--crop-size", "32", "--threads", "2"), "affinity train");
        AssertShardsEqualOneProcess("affinity infer", dir.File("rw-1"), dir.File("rw-2"),
            ["affinity", "infer", "--run", affRun, "--cams", cams, "--data", data, "--logt", "2"], o => Number(o, "wrote "));

        // eval: the shards' partial confusion matrices add up to the unsharded evaluation, every metric equal.
        var whole = Cli("eval", "--pred", labels, "--data", data, "--split", "train", "--json", dir.File("eval.json"));
        Ok(whole, "eval");
        for (int i = 1; i <= 2; i++)
            Ok(Cli("eval", "--pred", labels, "--data", data, "--split", "train", "--shard", $"{i}/2", "--partial", dir.File($"part{i}.json")), $"eval {i}/2");
        var merged = Cli("eval-merge", dir.File("part2.json"), dir.File("part1.json"), "--json", dir.File("merged.json"));
        Ok(merged, "eval-merge");
        Assert.Equal(File.ReadAllText(dir.File("eval.json")), File.ReadAllText(dir.File("merged.json")));
        var counts = new[] { 1, 2 }.Select(i => JsonNode.Parse(File.ReadAllText(dir.File($"part{i}.json")))!["num_images"]!.GetValue<int>()).ToArray();
        Assert.Equal(8, counts.Sum());
        Assert.All(counts, c => Assert.True(c > 0));

        // Refusals are one line naming what is wrong.
        var noPartial = Cli("eval", "--pred", labels, "--data", data, "--split", "train", "--shard", "1/2");
        Assert.Equal(1, noPartial.Code);
        Assert.Contains("pass --partial FILE", noPartial.Err);
        var missing = Cli("eval-merge", dir.File("part1.json"));
        Assert.Equal(1, missing.Code);
        Assert.Contains("shard 2/2 missing", missing.Err);
        var twice = Cli("eval-merge", dir.File("part1.json"), dir.File("part1.json"));
        Assert.Contains("shard 1/2 is also", twice.Err);
        var badShard = Cli("crf", "--pred", labels, "--data", data, "--split", "train", "--out", dir.File("x"), "--shard", "3/2");
        Assert.Equal(1, badShard.Code);
        Assert.Contains("--shard 3/2: expected i/N with 1 ≤ i ≤ N", badShard.Err);
    }

    [Fact]
    public void Shards_cover_every_name_once_and_depend_on_the_name_only()
    {
        var names = Enumerable.Range(0, 1000).Select(i => $"2008_{i:D6}").ToList();
        for (int n = 1; n <= 8; n++)
        {
            var shards = Enumerable.Range(0, n).Select(i => new WorkShard(i, n).Select(names)).ToList();
            Assert.Equal(names.Order(), shards.SelectMany(s => s).Order());
            Assert.All(shards, s => Assert.InRange(s.Count, 1000 / n * 0.8, 1000 / n * 1.2));      // balanced within ±20 % at 1000 images
            // The same name lands in the same shard whatever list it is in (a stage's listing never moves it).
            Assert.Equal(shards[n - 1].Take(5), new WorkShard(n - 1, n).Select(shards[n - 1].Take(5).Reverse().ToList()).Reverse());
        }
        Assert.Equal(0xcbf29ce484222325UL, WorkShard.NameHash(""));                                  // FNV-1a 64 offset basis
        Assert.Equal(0xaf63dc4c8601ec8cUL, WorkShard.NameHash("a"));                                 // published FNV-1a 64 test vector
        Assert.Equal(new WorkShard(2, 4), WorkShard.Parse("3/4"));
        Assert.Equal("3/4", new WorkShard(2, 4).ToString());
        foreach (var bad in new[] { "0/4", "5/4", "1", "a/b", "1/0" })
            Assert.Contains($"--shard {bad}: expected", Assert.Throws<WeakSegException>(() => WorkShard.Parse(bad)).Message);
    }

    [Fact]
    public void Shard_jobs_share_an_output_folder_and_exclude_a_process_that_needs_it_alone()
    {
        using var dir = TestPaths.NewTempDir();
        var folder = dir.File("out");
        using (var a = FolderLock.Acquire(folder, "output folder", shared: true))
        using (var b = FolderLock.Acquire(folder, "output folder", shared: true))
        {
            var e = Assert.Throws<WeakSegException>(() => FolderLock.Acquire(folder, "output folder"));
            Assert.Contains("in use by another weakseg process", e.Message);
        }
        using (var alone = FolderLock.Acquire(folder, "output folder"))
            Assert.Throws<WeakSegException>(() => FolderLock.Acquire(folder, "output folder", shared: true));
    }
}
