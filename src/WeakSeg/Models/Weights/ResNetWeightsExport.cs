using System.Globalization;
using WeakSeg.Interop;
using WeakSeg.Models.ResNet;

namespace WeakSeg.Models.Weights;

/// <summary>What <see cref="ResNetWeightsExport.Export"/> wrote.</summary>
public sealed record ResNetExportSummary(string OnnxPath, string OutputPath, IReadOnlyList<int> BlocksPerStage, int Tensors, WeightImportReport Report);

/// <summary>The ONNX ResNet imported into a TorchSharp <see cref="ResNet.ResNet"/> and written as torchvision-keyed safetensors.</summary>
public static class ResNetWeightsExport
{
    /// <summary>Imports <paramref name="onnxPath"/> (null: the packaged ResNet-18) and writes the model's state (weights, BN statistics,
    /// <c>num_batches_tracked</c>) to <paramref name="outputPath"/>, with the layout and input convention in the metadata.</summary>
    public static ResNetExportSummary Export(string? onnxPath, string outputPath)
    {
        var source = onnxPath ?? PackagedResNet18.ModelPath;
        using var weights = OnnxResNetImport.Read(source);
        using var model = new ResNet.ResNet(new ResNetConfig { BlocksPerStage = weights.BlocksPerStage });
        var report = OnnxResNetImport.Load(model, weights);
        var state = model.state_dict();
        var means = ResNetInput.ChannelMeansBgr;
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["architecture"] = "resnet (basic blocks), blocks per stage " + string.Join("-", weights.BlocksPerStage),
            ["source"] = Path.GetFileName(source),
            ["input"] = string.Create(CultureInfo.InvariantCulture, $"BGR, 0-255, minus per-channel means B {means.B} G {means.G} R {means.R} (or the prep graph's mean image)"),
        };
        SafetensorsFile.Write(outputPath, state, metadata);
        return new ResNetExportSummary(source, outputPath, weights.BlocksPerStage, state.Count, report);
    }
}
