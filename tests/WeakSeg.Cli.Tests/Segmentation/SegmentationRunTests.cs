using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Segmentation;
using WeakSeg.Tests.Data;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Segmentation;

[Collection("Torch")]
public class SegmentationRunTests
{
    /// <summary>Colour-coded 8×8 blocks (classes 0..3 = black/red/green/blue), 32×32 images: trivially separable per pixel.</summary>
    internal static string BlocksDataset(string root, int train = 8, int val = 3)
    {
        for (int i = 0; i < train; i++)
        {
            var (img, mask) = VocTestData.Blocks(32, 32, 8, 3, seed: 300 + i);
            VocTestData.Add(root, "train", $"tr_{i:D2}", img, mask);
        }
        for (int i = 0; i < val; i++)
        {
            var (img, mask) = VocTestData.Blocks(32, 32, 8, 3, seed: 900 + i);
            VocTestData.Add(root, "val", $"va_{i:D2}", img, mask);
        }
        File.WriteAllLines(Path.Combine(root, "classes.txt"), ["background", "red", "green", "blue"]);
        return root;
    }

    internal static (int Code, string Out, string Err) RunCli(params string[] args)
    {
        var (previousOut, previousErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (WeakSeg.Cli.Program.Run(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(previousOut); Console.SetError(previousErr); }
    }

    [Fact]
    public void Train_on_ground_truth_then_infer_and_eval_beats_all_background_by_far()
    {
        using var dir = TestPaths.NewTempDir();
        var data = BlocksDataset(dir.File("data"));
        var run = dir.File("run");
        var config = SegmentationTestData.Tiny(steps: 60) with { Loss = SegmentationDecoderLoss.Naive };
        var result = SegmentationRun.Train(new SegmentationTrainRequest
        {
            DataRoot = data, Split = "train", RunDirectory = run, Config = config, Seed = 1, Threads = 2, LoaderWorkers = 1,
        });
        Assert.True(result.Completed);
        Assert.True(File.Exists(Path.Combine(run, "model-final.bin")));
        Assert.Equal(12, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);
        var info = SegmentationRun.ReadInfo(run);
        Assert.Equal("gt", info.Labels);
        Assert.Equal(["background", "red", "green", "blue"], info.ClassNames);

        var pred = dir.File("pred");
        var (code, stdout, err) = RunCli("seg-infer", "--run", run, "--split", "val", "--out", pred, "--threads", "2");
        Assert.True(code == 0, err);
        Assert.Contains("wrote 3 predictions", stdout);
        Assert.Equal(3, Directory.GetFiles(pred, "*.png").Length);
        var first = LabelPng.Read(Path.Combine(pred, "va_00.png"));
        Assert.Equal((32, 32), (first.Width, first.Height));

        var eval = SegmentationEvaluator.EvaluateDirectory(pred, data, "val");
        // all-background would score IoU_bg (≈ ¼ of the pixels) over 4 classes ≈ 0.06
        Assert.True(eval.Metrics.MeanIou > 0.6, $"mIoU {eval.Metrics.MeanIou} " + File.ReadAllText(Path.Combine(run, "metrics.jsonl")));

        // resumable: a second call skips every existing file
        var again = RunCli("seg-infer", "--run", run, "--split", "val", "--out", pred, "--threads", "2");
        Assert.Contains("wrote 0 predictions", again.Out);
        Assert.Contains("skipped 3 existing", again.Out);
        Assert.Equal(0, RunCli("eval", "--pred", pred, "--data", data, "--split", "val").Code);
    }

    [Fact]
    public void Resumed_run_ends_with_the_weights_of_an_uninterrupted_run()
    {
        using var dir = TestPaths.NewTempDir();
        var data = BlocksDataset(dir.File("data"), train: 4, val: 1);
        var config = SegmentationTestData.Tiny(steps: 6) with { BatchSize = 2, CheckpointEvery = 2 };
        SegmentationTrainRequest Request(string run) => new() { DataRoot = data, Split = "train", RunDirectory = run, Config = config, Seed = 5, Threads = 2, LoaderWorkers = 1 };

        SegmentationRun.Train(Request(dir.File("a")));
        using var cancel = new CancellationTokenSource();
        var partial = SegmentationRun.Train(Request(dir.File("b")), cancellationToken: cancel.Token, stepCompleted: r => { if (r.Step == 3) cancel.Cancel(); });
        Assert.False(partial.Completed);
        Assert.Equal(3, partial.Step);
        var resumed = SegmentationRun.Train(Request(dir.File("b")) with { Resume = true });
        Assert.True(resumed.Completed);

        using var a = new SegmenterModel(config with { NumClasses = 3 });
        using var b = new SegmenterModel(config with { NumClasses = 3 });
        CheckpointStore.LoadModel(Path.Combine(dir.File("a"), "model-final.bin"), a);
        CheckpointStore.LoadModel(Path.Combine(dir.File("b"), "model-final.bin"), b);
        var pb = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in a.named_parameters())
            Assert.True(p.sub(pb[name]).abs().max().item<float>() == 0, name);

        var e = Assert.Throws<WeakSegException>(() => SegmentationRun.Train(Request(dir.File("b")) with { Resume = true, Seed = 6 }));
        Assert.Contains("seed is 6 but the run used 5", e.Message);
    }

    [Fact]
    public void Missing_pseudo_label_is_an_error_naming_the_file_and_labels_replace_the_masks()
    {
        using var dir = TestPaths.NewTempDir();
        var data = BlocksDataset(dir.File("data"), train: 2, val: 1);
        var labels = Directory.CreateDirectory(dir.File("labels")).FullName;
        LabelPng.Write(Path.Combine(labels, "tr_00.png"), new LabelMap(32, 32));
        var dataset = VocDataset.Open(data, "train");
        var e = Assert.Throws<WeakSegException>(() => SegmentationRun.TrainingSamples(dataset, labels));
        Assert.StartsWith(Path.Combine(labels, "tr_01.png") + ": pseudo label not found for image 'tr_01'", e.Message);
        var (code, _, err) = RunCli("seg-train", "--labels", labels, "--data", data, "--split", "train", "--out", dir.File("run"), "--steps", "1");
        Assert.Equal(1, code);
        Assert.Contains(Path.Combine(labels, "tr_01.png"), err);

        LabelPng.Write(Path.Combine(labels, "tr_01.png"), new LabelMap(32, 32));
        var samples = SegmentationRun.TrainingSamples(dataset, labels);
        Assert.Equal([Path.Combine(labels, "tr_00.png"), Path.Combine(labels, "tr_01.png")], samples.Select(s => s.MaskPath));
        Assert.Equal(dataset.Samples.Select(s => s.ImagePath), samples.Select(s => s.ImagePath));
    }
}
