using System.Text.Json;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Evaluation;

public class SegmentationEvaluatorTests
{
    // a: 4×2 with one ignore pixel → GT 0 ×3, class 1 ×4; b: 2×2 → GT 0 ×2, class 15 (person) ×2. 11 scored pixels.
    static readonly LabelMap A = EvalTestData.Mask(4, 2, 0, 0, 1, 1, 0, 255, 1, 1);
    static readonly LabelMap B = EvalTestData.Mask(2, 2, 0, 15, 15, 0);

    static string MakeDataset(TempDir tmp)
    {
        var root = tmp.File("voc");
        EvalTestData.WriteDataset(root, "val", ("a", A), ("b", B));
        return root;
    }

    [Fact]
    public void Ground_truth_scored_against_itself_is_perfect()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = MakeDataset(tmp);
        var r = SegmentationEvaluator.EvaluateDirectory(Path.Combine(root, "SegmentationClass"), root, "val");
        Assert.Equal(1.0, r.Metrics.MeanIou);
        Assert.Equal(1.0, r.Metrics.PixelAccuracy);
        Assert.Equal(11, r.Metrics.TotalPixels);
        Assert.Equal(2, r.NumImages);
        Assert.Equal(21, r.ClassNames.Count);
    }

    [Fact]
    public void All_background_prediction_gives_the_hand_computed_scores_and_json()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = MakeDataset(tmp);
        var pred = tmp.File("pred");
        LabelPng.Write(Path.Combine(pred, "a.png"), new LabelMap(4, 2));
        LabelPng.Write(Path.Combine(pred, "b.png"), new LabelMap(2, 2));
        var r = SegmentationEvaluator.EvaluateDirectory(pred, root, "val", new SegmentationEvalOptions { MaxParallelism = 2 });
        // background: TP 5, GT 5, Pred 11 → 5/11; aeroplane and person: IoU 0; the 18 other classes are absent → excluded.
        Assert.Equal(5.0 / 11, r.Metrics.Iou[0], 12);
        Assert.Equal(0.0, r.Metrics.Iou[1]); Assert.Equal(0.0, r.Metrics.Iou[15]);
        Assert.Equal(5.0 / 11 / 3, r.Metrics.MeanIou, 12);
        Assert.Equal(5.0 / 11, r.Metrics.PixelAccuracy, 12);

        var json = tmp.File("m.json");
        EvaluationJson.Write(json, r);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var j = doc.RootElement;
        Assert.Equal(5.0 / 11 / 3, j.GetProperty("miou").GetDouble(), 12);
        Assert.Equal(5.0 / 11, j.GetProperty("pixel_accuracy").GetDouble(), 12);
        Assert.Equal(2, j.GetProperty("num_images").GetInt32());
        var perClass = j.GetProperty("per_class");
        Assert.Equal(21, perClass.EnumerateObject().Count());
        Assert.Equal(5.0 / 11, perClass.GetProperty("background").GetProperty("iou").GetDouble(), 12);
        Assert.Equal(5.0 / 11, perClass.GetProperty("background").GetProperty("precision").GetDouble(), 12);
        Assert.Equal(1.0, perClass.GetProperty("background").GetProperty("recall").GetDouble());
        Assert.Equal(0.0, perClass.GetProperty("aeroplane").GetProperty("recall").GetDouble());
        Assert.Equal(JsonValueKind.Null, perClass.GetProperty("aeroplane").GetProperty("precision").ValueKind);
        Assert.Equal(JsonValueKind.Null, perClass.GetProperty("bicycle").GetProperty("iou").ValueKind);
        Assert.Equal(4, perClass.GetProperty("aeroplane").GetProperty("gt_pixels").GetInt64());
        Assert.False(File.Exists(json + ".tmp"));
    }

    [Fact]
    public void Cli_eval_prints_the_table_writes_json_and_honours_classes_txt_and_skip_policy()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = tmp.File("voc");
        EvalTestData.WriteDataset(root, "val", ("a", EvalTestData.Mask(2, 2, 0, 1, 2, 2)));
        File.WriteAllLines(Path.Combine(root, "classes.txt"), ["background", "cat", "dog"]);
        var pred = tmp.File("pred");
        LabelPng.Write(Path.Combine(pred, "a.png"), EvalTestData.Mask(2, 2, 0, 255, 2, 1));
        var json = tmp.File("r.json");

        var (exit, stdout, stderr) = EvalTestData.RunCli("eval", "--pred", pred, "--data", root, "--json", json);
        Assert.True(exit == 0, stderr);
        Assert.Contains("dog", stdout);
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            // missed: bg 1, cat TP0 GT1 Pred1 → 0, dog TP1 GT2 Pred1 → 1/2
            Assert.Equal((1 + 0 + 0.5) / 3, doc.RootElement.GetProperty("miou").GetDouble(), 12);
            Assert.Equal(0.5, doc.RootElement.GetProperty("per_class").GetProperty("dog").GetProperty("iou").GetDouble(), 12);
            Assert.Equal("count_as_missed", doc.RootElement.GetProperty("pred_ignore").GetString());
        }
        (exit, _, stderr) = EvalTestData.RunCli("eval", "--pred", pred, "--data", root, "--json", json, "--pred-ignore", "skip");
        Assert.True(exit == 0, stderr);
        using (var doc = JsonDocument.Parse(File.ReadAllText(json)))
        {
            // the 255 pixel (GT cat) dropped: cat TP0 GT0 Pred1 → 0 still counts under the union rule
            Assert.Equal(0.0, doc.RootElement.GetProperty("per_class").GetProperty("cat").GetProperty("iou").GetDouble());
            Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("per_class").GetProperty("cat").GetProperty("recall").ValueKind);
            Assert.Equal(2.0 / 3, doc.RootElement.GetProperty("pixel_accuracy").GetDouble(), 12);
        }
    }

    [Fact]
    public void Missing_prediction_size_mismatch_and_bad_labels_name_the_files()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = MakeDataset(tmp);
        var pred = tmp.File("pred");
        LabelPng.Write(Path.Combine(pred, "a.png"), new LabelMap(4, 2));

        var (exit, _, stderr) = EvalTestData.RunCli("eval", "--pred", pred, "--data", root, "--split", "val");
        Assert.Equal(1, exit);
        Assert.Contains("error: " + Path.Combine(pred, "b.png") + ": prediction not found for image 'b'", stderr);

        LabelPng.Write(Path.Combine(pred, "b.png"), new LabelMap(3, 2));
        var e = Assert.Throws<WeakSegException>(() => SegmentationEvaluator.EvaluateDirectory(pred, root, "val"));
        Assert.Contains("size mismatch", e.Message);
        Assert.Contains(Path.Combine(pred, "b.png") + " is 3x2", e.Message);
        Assert.Contains(Path.Combine(root, "SegmentationClass", "b.png") + " is 2x2", e.Message);

        LabelPng.Write(Path.Combine(pred, "b.png"), EvalTestData.Mask(2, 2, 0, 0, 0, 21));
        e = Assert.Throws<WeakSegException>(() => SegmentationEvaluator.EvaluateDirectory(pred, root, "val"));
        Assert.StartsWith(Path.Combine(pred, "b.png"), e.Message);
        Assert.Contains("predicted label 21 at pixel 3", e.Message);
    }
}
