using Google.Protobuf;
using Onnx;
using TorchSharp;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Weights;
using WeakSeg.Tests.Support;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Models.ResNet;

[Collection("Torch")]
public class PackagedResNet18Tests(PackagedResNet18Fixture fixture, ITestOutputHelper output) : IClassFixture<PackagedResNet18Fixture>
{
    const int Side = PackagedResNet18Fixture.Side;

    /// <summary>max |a − b| / max |b|.</summary>
    static double Relative(float[] actual, float[] expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return diff / scale;
    }

    static float[] RandomRgb(int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, 3 * Side * Side).Select(_ => (float)(random.NextDouble() * 255)).ToArray();
    }

    /// <summary>A smooth synthetic picture: a sky-to-ground gradient, a red disc and a green square, on the 0–255 scale.</summary>
    static float[] SyntheticRgb()
    {
        var rgb = new float[3 * Side * Side];
        for (int y = 0; y < Side; y++)
            for (int x = 0; x < Side; x++)
            {
                float r = 60 + 100f * y / Side, g = 120 - 40f * y / Side, b = 220 - 150f * y / Side;
                if ((x - 80) * (x - 80) + (y - 90) * (y - 90) < 40 * 40) (r, g, b) = (210, 30, 40);
                if (x is > 130 and < 200 && y is > 120 and < 190) (r, g, b) = (40, 170, 60);
                int i = y * Side + x;
                rgb[i] = r;
                rgb[Side * Side + i] = g;
                rgb[2 * Side * Side + i] = b;
            }
        return rgb;
    }

    (float[] Preprocessed, float[][] Stages, float[] Pooled) RunTorch(float[] rgb255, bool meanImage)
    {
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var images = torch.tensor(rgb255, [1, 3, Side, Side]);
        var input = ResNetInput.FromRgb255(images, meanImage ? fixture.MeanImage : null);
        var stages = fixture.Model.ForwardStages(input);
        var pooled = stages[^1].mean([2, 3]);
        return (input.data<float>().ToArray(), stages.Take(3).Select(s => s.data<float>().ToArray()).ToArray(), pooled.data<float>().ToArray());
    }

    [Theory]
    [InlineData("random")]
    [InlineData("synthetic")]
    public void Matches_onnx_runtime_on_pooled_features_and_stride_8_and_16_maps(string inputKind)
    {
        var rgb = inputKind == "random" ? RandomRgb(7) : SyntheticRgb();
        var ort = fixture.RunOrt(rgb);
        var ours = RunTorch(rgb, meanImage: true);

        Assert.True(Relative(ours.Preprocessed, ort.Preprocessed) < 1e-6, "preprocessing differs from the prep graph");
        Assert.Equal(64 * 56 * 56, ort.Stages[0].Length);
        Assert.Equal(128 * 28 * 28, ort.Stages[1].Length);   // stride 8
        Assert.Equal(256 * 14 * 14, ort.Stages[2].Length);   // stride 16
        string[] names = ["stride 4", "stride 8", "stride 16"];
        for (int s = 0; s < 3; s++)
        {
            double rel = Relative(ours.Stages[s], ort.Stages[s]);
            output.WriteLine($"{inputKind} {names[s]}: relative difference {rel:E2}");
            Assert.True(rel < 1e-4, $"{names[s]} map: relative difference {rel:E2}");
        }
        double pooledRel = Relative(ours.Pooled, ort.Pooled);
        output.WriteLine($"{inputKind} pooled: relative difference {pooledRel:E2}");
        Assert.True(pooledRel < 1e-4, $"pooled features: relative difference {pooledRel:E2}");
        Assert.True(ort.Pooled.Max() > 0.1, "the features are not trivial");
    }

    [Fact]
    public void Channel_means_approximate_the_mean_image_and_match_its_pixel_averages()
    {
        Assert.Equal(new[] { 2, 1, 0 }, fixture.ChannelOrder);   // the prep graph reorders RGB to BGR
        using var means = fixture.MeanImage.mean([0, 2, 3]);
        var m = means.data<float>().ToArray();
        Assert.Equal(ResNetInput.ChannelMeansBgr.B, m[0], 1e-3f);
        Assert.Equal(ResNetInput.ChannelMeansBgr.G, m[1], 1e-3f);
        Assert.Equal(ResNetInput.ChannelMeansBgr.R, m[2], 1e-3f);

        // Measured: with per-channel means instead of the mean image the pooled features move by 4.4e-2 relative on this picture (not exact).
        var rgb = SyntheticRgb();
        var ort = fixture.RunOrt(rgb);
        var withMeans = RunTorch(rgb, meanImage: false);
        double rel = Relative(withMeans.Pooled, ort.Pooled);
        output.WriteLine($"per-channel means: pooled relative difference {rel:E2}");
        Assert.True(rel is > 1e-4 and < 0.1, $"per-channel means: pooled relative difference {rel:E2}");
    }

    [Fact]
    public void Imagenet_normalised_input_converts_to_the_networks_bgr_input()
    {
        var rgb = RandomRgb(3);
        using var raw = torch.tensor(rgb, [1, 3, Side, Side]);
        var (mr, mg, mb) = ResNetInput.ImageNetMean;
        var (sr, sg, sb) = ResNetInput.ImageNetStd;
        using var mean = torch.tensor(new[] { mr, mg, mb }).reshape(1, 3, 1, 1);
        using var std = torch.tensor(new[] { sr, sg, sb }).reshape(1, 3, 1, 1);
        using var normalised = raw.div(255).sub(mean).div(std);
        using var expected = ResNetInput.FromRgb255(raw);
        using var actual = ResNetInput.FromImageNetNormalised(normalised);
        Assert.True(torch.allclose(actual, expected, rtol: 0, atol: 1e-3));
        // Blue first: pure blue pixels (0, 0, 255) become (255 − 103.06, −115.90, −123.15).
        using var blue = torch.tensor(new float[] { 0, 0, 255 }).reshape(1, 3, 1, 1);
        var b = ResNetInput.FromRgb255(blue).data<float>().ToArray();
        Assert.Equal(255 - ResNetInput.ChannelMeansBgr.B, b[0], 1e-4f);
        Assert.Equal(-ResNetInput.ChannelMeansBgr.R, b[2], 1e-4f);
    }

    [Fact]
    public void Every_conv_and_batch_norm_of_the_graph_is_mapped_exactly_once()
    {
        var graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(PackagedResNet18.ModelPath)).Graph;
        var convs = graph.Node.Where(n => n.OpType == "Conv").Select(n => n.Name).ToList();
        var norms = graph.Node.Where(n => n.OpType == "BatchNormalization").Select(n => n.Name).ToList();
        Assert.Equal(22, convs.Count);
        Assert.Equal(22, norms.Count);
        var mapping = fixture.Weights.Mapping;
        foreach (var conv in convs) Assert.Single(mapping, m => m.Node == conv);
        foreach (var bn in norms) Assert.Equal(4, mapping.Count(m => m.Node == bn));
        Assert.Equal(22 + 4 * 22, mapping.Count);
        Assert.Equal(mapping.Count, mapping.Select(m => m.Initializer).Distinct().Count());
        Assert.Equal(mapping.Count, mapping.Select(m => m.Key).Distinct().Count());
        Assert.Equal(graph.Initializer.Count, mapping.Count);   // nothing in the file is left over

        // Every parameter and BN statistic of the model came from the file; only the BN step counters did not.
        var modelKeys = fixture.Model.state_dict().Keys.Where(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal)).ToHashSet();
        Assert.Equal(modelKeys.OrderBy(k => k), mapping.Select(m => m.Key).OrderBy(k => k));
        Assert.Equal(110, fixture.Report.Loaded.Count);
        Assert.Empty(fixture.Report.Unexpected);
        Assert.All(fixture.Report.Missing, k => Assert.EndsWith("num_batches_tracked", k));

        Assert.Equal(new[] { 2, 2, 2, 3 }, fixture.Weights.BlocksPerStage);
        // Graph order: the stem conv first, then layer1.0.conv1; the downsample of layer2.0 comes before its conv1 in the file.
        Assert.Equal(("Convolution249", "conv1.weight"), (mapping[0].Node, mapping[0].Key));
        Assert.Contains(mapping, m => m.Node == "Convolution295" && m.Key == "layer2.0.downsample.0.weight");
        Assert.Contains(mapping, m => m.Node == "BatchNormalization297" && m.Key == "layer2.0.downsample.1.running_var");
        Assert.Contains(mapping, m => m.Node == "Convolution285" && m.Key == "layer2.0.conv1.weight");
        Assert.Contains(mapping, m => m.Node == "Convolution387" && m.Key == "layer4.2.conv2.weight");
    }

    [Fact]
    public void Exported_safetensors_reimport_to_identical_outputs()
    {
        using var dir = TestPaths.NewTempDir();
        var path = dir.File("r18.safetensors");
        var summary = ResNetWeightsExport.Export(null, path);
        Assert.Equal(new[] { 2, 2, 2, 3 }, summary.BlocksPerStage);

        torch.manual_seed(5);
        using var reloaded = new WeakSeg.Models.ResNet.ResNet(new ResNetConfig { BlocksPerStage = [2, 2, 2, 3] });
        var report = TimmWeightImport.LoadFile(reloaded, path);
        Assert.Equal(132, report.Loaded.Count);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        reloaded.eval();

        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var input = ResNetInput.FromRgb255(torch.tensor(RandomRgb(11), [1, 3, Side, Side]));
        var expected = fixture.Model.ForwardPooled(input);
        var actual = reloaded.ForwardPooled(input);
        Assert.True(actual.eq(expected).all().item<bool>());
        Assert.True(expected.abs().max().item<float>() > 0.1f);
    }

    [Fact]
    public void Missing_and_corrupt_files_are_one_line_errors_naming_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var missing = dir.File("absent.onnx");
        var e = Assert.Throws<WeakSegException>(() => OnnxResNetImport.Read(missing));
        Assert.Equal($"{missing}: ONNX file not found", e.Message);

        var truncated = dir.File("truncated.onnx");
        File.WriteAllBytes(truncated, File.ReadAllBytes(PackagedResNet18.ModelPath).AsSpan(0, 5000).ToArray());
        e = Assert.Throws<WeakSegException>(() => OnnxResNetImport.Read(truncated));
        Assert.StartsWith($"{truncated}: not a valid ONNX file", e.Message);
        Assert.DoesNotContain('\n', e.Message);

        var text = dir.File("text.onnx");
        File.WriteAllText(text, "this is not a model");
        e = Assert.Throws<WeakSegException>(() => OnnxResNetImport.Read(text));
        Assert.StartsWith($"{text}: ", e.Message);
    }

    static string WriteEdited(TempDir dir, string name, Action<GraphProto> edit)
    {
        var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(PackagedResNet18.ModelPath));
        edit(proto.Graph);
        var path = dir.File(name);
        File.WriteAllBytes(path, proto.ToByteArray());
        return path;
    }

    [Fact]
    public void Another_architecture_names_the_first_node_or_initializer_that_does_not_fit()
    {
        using var dir = TestPaths.NewTempDir();

        // The preprocessing graph is not a ResNet: its first node is named.
        var prep = PackagedResNet18.PreprocessPath;
        var e = Assert.Throws<WeakSegException>(() => OnnxResNetImport.Read(prep));
        Assert.Equal($"{prep}: node 'RInp' (Split) does not fit a ResNet of basic blocks", e.Message);

        // A plain conv → BN → conv chain (the ReLU of layer1.0 removed, its conv2 fed by the BN): conv2 no longer fits.
        var noRelu = WriteEdited(dir, "no_relu.onnx", g =>
        {
            var relu = g.Node.First(n => n.Name == "ReLU261");
            g.Node.Remove(relu);
            g.Node.First(n => n.Name == "Convolution263").Input[0] = relu.Input[0];
        });
        e = Assert.Throws<WeakSegException>(() => OnnxResNetImport.Read(noRelu));
        Assert.StartsWith($"{noRelu}: node 'Convolution263' (Conv) does not fit a ResNet basic block", e.Message);

        // A Sigmoid in place of a ReLU.
        var sigmoid = WriteEdited(dir, "sigmoid.onnx", g => g.Node.First(n => n.Name == "ReLU253").OpType = "Sigmoid");
        e = Assert.Throws<WeakSegException>(() => OnnxResNetImport.Read(sigmoid));
        Assert.Equal($"{sigmoid}: node 'ReLU253' (Sigmoid) does not fit a ResNet of basic blocks", e.Message);

        // An initializer whose values do not fill its dims.
        var shortWeight = WriteEdited(dir, "short.onnx", g => g.Initializer.First(t => t.Name == "Parameter91").Dims[3] = 6);
        e = Assert.Throws<WeakSegException>(() => OnnxResNetImport.Read(shortWeight));
        Assert.Equal($"{shortWeight}: initializer 'Parameter91' holds 9408 values but its dims [64, 3, 7, 6] need 8064", e.Message);

        // A model of another layout (torchvision's 2-2-2-2) does not take the file's third block of layer4.
        using var torchvisionLayout = new WeakSeg.Models.ResNet.ResNet(new ResNetConfig { BlocksPerStage = [2, 2, 2, 2] });
        e = Assert.Throws<WeakSegException>(() => OnnxResNetImport.Load(torchvisionLayout, fixture.Weights));
        Assert.Contains("node 'Convolution381' (Conv) maps to 'layer4.2.conv1.weight', which the model does not have", e.Message);
        Assert.StartsWith(PackagedResNet18.ModelPath, e.Message);

        // A model with more blocks than the file: the first key without an initializer is named.
        using var deeper = new WeakSeg.Models.ResNet.ResNet(new ResNetConfig { BlocksPerStage = [3, 2, 2, 3] });
        e = Assert.Throws<WeakSegException>(() => OnnxResNetImport.Load(deeper, fixture.Weights));
        Assert.Contains("the graph has no initializer for the model's 'layer1.2.conv1.weight'", e.Message);
    }

    [Fact]
    public void Truncated_trunks_take_the_stages_they_build_and_dilation_keeps_stride_8()
    {
        using var trunk = new WeakSeg.Models.ResNet.ResNet(new ResNetConfig { Stages = 3, DilatedStages = [3] });
        var report = OnnxResNetImport.Load(trunk, fixture.Weights);
        Assert.Contains("layer3.1.bn2.running_var", report.Loaded);
        Assert.Contains("layer4.0.conv1.weight", report.Unexpected);
        Assert.Equal(8, trunk.Config.OutputStride);
        trunk.eval();
        using var scope = torch.NewDisposeScope();
        using var _ = torch.no_grad();
        var input = ResNetInput.FromRgb255(torch.tensor(RandomRgb(2), [1, 3, Side, Side]));
        var features = trunk.forward(input);
        Assert.Equal(new long[] { 1, 256, 28, 28 }, features.shape);
        // layers 1–2 are unchanged by the dilation of layer3: the stride-8 map equals the full model's.
        var full = fixture.Model.ForwardStages(input)[1];
        var trunkStride8 = trunk.ForwardStages(input)[1];
        Assert.True(full.eq(trunkStride8).all().item<bool>());
    }
}
