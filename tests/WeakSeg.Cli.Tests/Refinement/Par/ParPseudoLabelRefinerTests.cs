using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Interop;
using WeakSeg.PseudoLabels;
using WeakSeg.Refinement.Par;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Refinement.Par;

/// <summary><c>weakseg pseudo --par</c>: PAR as a standalone refinement of saved maps into pseudo labels.</summary>
[Collection("Torch")]
public class ParPseudoLabelRefinerTests
{
    static SafetensorsFile Case(string name) => SafetensorsFile.Read(TestPaths.Fixture("single_stage", name + ".safetensors"));

    /// <summary>Image i of a [B, 3, H, W] tensor in [0, 1] holding whole multiples of 1/255, as an RGB image.</summary>
    static RgbImage ImageOf(Tensor images01, int i)
    {
        using var scope = torch.NewDisposeScope();
        var hwc = images01[i].mul(255.0).round().permute(1, 2, 0).contiguous().to_type(ScalarType.Byte);
        return new RgbImage((int)images01.shape[3], (int)images01.shape[2], hwc.data<byte>().ToArray());
    }

    /// <summary>Image i's maps of its present classes (labels [B, C]) from cams [B, C, H, W], as a saved-map record.</summary>
    static CamMaps MapsOf(Tensor cams, Tensor labels, int i)
    {
        using var scope = torch.NewDisposeScope();
        var present = labels[i].data<float>().ToArray().Select((v, k) => (v, k)).Where(t => t.v != 0).Select(t => t.k).ToArray();
        var planes = cams[i].index_select(0, torch.tensor(present.Select(k => (long)k).ToArray())).contiguous().data<float>().ToArray();
        return new CamMaps("image" + i, planes, present.Select(k => k + 1).ToArray(), (int)cams.shape[2], (int)cams.shape[3]);
    }

    [Fact]
    public void Two_levels_at_half_scale_reproduce_the_reference_refined_labels()
    {
        // MoRe's refine_cams_with_bkg_v2 without a crop box (the same function as ToCo's training labels): [0.7; cams] and
        // [0.25; cams], PAR at 1/2, L_h with 255 where only L_h is background. Here through the saved-map path of `pseudo --par`.
        var io = Case("more_refine_cams_with_bkg_v2_nobox");
        using var scope = torch.NewDisposeScope();
        var images = io.ToTorch("inputs_denorm");
        var cams = io.ToTorch("valid_cam");
        var labels = io.ToTorch("cls_label");
        var expected = io.ToTorch("refined_label");
        using var tmp = TestPaths.NewTempDir();
        var refiner = new ParPseudoLabelRefiner(tmp.Path, ParConfig.Default, downScale: 2);
        for (int i = 0; i < images.shape[0]; i++)
        {
            var label = refiner.Label(ImageOf(images, i), MapsOf(cams, labels, i), threshold: 0.5, new UncertainBand(0.25f, 0.7f));
            var want = expected[i].flatten().data<long>().ToArray();
            Assert.Equal(want.Length, label.Labels.Length);
            for (int p = 0; p < want.Length; p++) Assert.True(want[p] == label.Labels[p], $"image {i} pixel {p}: expected {want[p]}, got {label.Labels[p]}");
            Assert.Contains(label.Labels, v => v == LabelMap.Ignore);                                 // the case exercises the band
        }
    }

    [Fact]
    public void One_level_is_the_argmax_of_the_par_refined_softmax_stack()
    {
        // Hand composition from the PAR module itself: softmax over [t; maps], PAR at full resolution, argmax, plane k → its class.
        var io = Case("more_refine_cams_with_bkg_v2_nobox");
        using var scope = torch.NewDisposeScope();
        var images = io.ToTorch("inputs_denorm");
        var cams = io.ToTorch("valid_cam");
        var labels = io.ToTorch("cls_label");
        var par = new PixelAdaptiveRefinement();
        using var tmp = TestPaths.NewTempDir();
        var refiner = new ParPseudoLabelRefiner(tmp.Path);
        for (int i = 0; i < images.shape[0]; i++)
        {
            var maps = MapsOf(cams, labels, i);
            var image = ImageOf(images, i);
            var label = refiner.Label(image, maps, threshold: 0.4, band: null);
            var planes = torch.tensor(maps.Maps, new long[] { maps.Classes.Length, maps.Height, maps.Width });
            var stack = torch.cat(new[] { torch.full(new long[] { 1, maps.Height, maps.Width }, 0.4f), planes }, 0).softmax(0).unsqueeze(0);
            var rgb = torch.tensor(image.Pixels, new long[] { image.Height, image.Width, 3 }).permute(2, 0, 1).unsqueeze(0).to_type(ScalarType.Float32).div(255.0);
            var argmax = par.Refine(rgb, stack).argmax(1).flatten().data<long>().ToArray();
            var expected = argmax.Select(k => k == 0 ? (byte)0 : (byte)maps.Classes[k - 1]).ToArray();
            Assert.Equal(expected, label.Labels);
            Assert.DoesNotContain(label.Labels, v => v == LabelMap.Ignore);
            // PAR changes labels: the plain threshold rule on the same maps differs somewhere
            Assert.NotEqual(CamToLabel.Convert(maps, 0.4f, null).Labels, label.Labels);
        }
    }

    [Fact]
    public void An_image_without_classes_is_background_and_a_size_mismatch_names_the_image()
    {
        using var tmp = TestPaths.NewTempDir();
        var refiner = new ParPseudoLabelRefiner(tmp.Path);
        var empty = refiner.Label(new RgbImage(5, 4), new CamMaps("none", [], [], 4, 5), 0.5, null);
        Assert.All(empty.Labels, v => Assert.Equal(0, v));
        var e = Assert.Throws<WeakSegException>(() => refiner.Label(new RgbImage(6, 4), new CamMaps("odd", new float[20], [1], 4, 5), 0.5, null));
        Assert.Contains("odd", e.Message);
        Assert.Contains("6×4", e.Message);
        Assert.Throws<WeakSegException>(() => new ParPseudoLabelRefiner(tmp.Path, null, 0));
    }

    [Fact]
    public void Pseudo_cli_with_par_writes_the_refiners_labels_and_refuses_bad_combinations()
    {
        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var dataset = VocDataset.Open(data, "train");
        var cams = dir.File("cams");
        var random = new Random(5);
        foreach (var sample in dataset.Samples.Take(3))
        {
            var (w, h) = ImageCodec.ReadSize(sample.ImagePath);
            var maps = new float[sample.Classes.Length * w * h];
            for (int i = 0; i < maps.Length; i++) maps[i] = (float)random.NextDouble();
            CamMapFile.Write(cams, sample.Name, maps, sample.Classes, h, w);
        }
        var outDir = dir.File("out");
        var (code, stdout, stderr) = WeakSeg.Tests.Evaluation.EvalTestData.RunCli("pseudo", "--cams", cams, "--out", outDir, "--par", "--data", data, "--threshold", "0.6", "--uncertain", "0.3:0.8");
        Assert.True(code == 0, stderr);
        Assert.Contains("wrote 3 labels", stdout);
        var refiner = new ParPseudoLabelRefiner(data);
        foreach (var sample in dataset.Samples.Take(3))
        {
            var expected = refiner.Label(CamMapFile.Read(cams, sample.Name), new PseudoLabelConfig { Threshold = 0.6f, Uncertain = new UncertainBand(0.3f, 0.8f) });
            Assert.Equal(expected.Labels, LabelPng.Read(Path.Combine(outDir, sample.Name + ".png")).Labels);
        }

        var noData = WeakSeg.Tests.Evaluation.EvalTestData.RunCli("pseudo", "--cams", cams, "--out", dir.File("out2"), "--par");
        Assert.Equal(1, noData.Exit);
        Assert.Contains("--par needs the images", noData.Err);
        var both = WeakSeg.Tests.Evaluation.EvalTestData.RunCli("pseudo", "--cams", cams, "--out", dir.File("out3"), "--par", "--crf", "--data", data);
        Assert.Equal(1, both.Exit);
        Assert.Contains("drop --crf", both.Err);
        Assert.Single(both.Err.Trim().Split('\n'));
    }
}
